"""LabelMix regularisation of the OASIS discriminator (official ``generate_labelmix`` and
``loss_labelmix``).

A binary mask that is constant inside each class of the label map mixes a real and a generated
image; D's logits on the mix should equal the same mix of its logits on the two images.
"""
import torch
import torch.nn.functional as F


def generate_labelmix(label, fake, real, generator=None, num_classes=None):
    """Mix real and fake images with a random per-class binary mask.

    Every class present in the batch draws one bit (shared by all images of the batch, as in the
    official code); the mask is that bit at every pixel of the class. With ``num_classes``, one
    bit is drawn for every class id instead, indexed by id: the same distribution, but the bit of
    class c no longer depends on which other classes the batch holds, so processes that see
    different parts of a global batch (DDP) draw the global batch's mask from a shared RNG.

    Args:
        label: LongTensor[B, H, W] of class ids, or Tensor[B, C, H, W] one-hot (argmax is taken).
        fake: Tensor[B, 3, H, W], generated images.
        real: Tensor[B, 3, H, W], real images.
        generator: optional torch.Generator for the bits (for determinism); its device is used
            to draw them.
        num_classes: None (a bit per class present, official) or the size of the label space
            (a bit per class id).

    Returns:
        (mixed, mask): mixed = mask * real + (1 - mask) * fake, Tensor[B, 3, H, W];
        mask Tensor[B, 1, H, W] of 0./1. in ``real``'s dtype (1 = real).
    """
    if label.dim() == 4:
        label = label.argmax(dim=1)
    elif label.dim() != 3:
        raise ValueError(f'label must be [B, H, W] ids or [B, C, H, W] one-hot, '
                         f'got {tuple(label.shape)}')
    label = label.long()
    if label.shape[-2:] != real.shape[-2:] or fake.shape != real.shape:
        raise ValueError(f'label {tuple(label.shape)}, fake {tuple(fake.shape)} and real '
                         f'{tuple(real.shape)} must share B, H, W')
    draw_device = generator.device if generator is not None else label.device
    if num_classes is not None:
        if int(label.max()) >= num_classes:
            raise ValueError(f'label id {int(label.max())} >= num_classes={num_classes}')
        lut = torch.randint(0, 2, (num_classes,), generator=generator,
                            device=draw_device).to(label.device)
    else:
        classes = torch.unique(label)
        bits = torch.randint(0, 2, (classes.numel(),), generator=generator, device=draw_device)
        lut = torch.zeros(int(classes.max()) + 1, dtype=torch.long, device=label.device)
        lut[classes] = bits.to(label.device)
    mask = lut[label].unsqueeze(1).to(real.dtype)
    mixed = mask * real + (1 - mask) * fake
    return mixed, mask


def labelmix_loss(d_mixed, d_real, d_fake, mask):
    """LabelMix consistency loss: MSE(mask * D(real) + (1 - mask) * D(fake), D(mixed)).

    Mean over all elements, on logits, gradients to all three inputs (as official).

    Args:
        d_mixed: Tensor[B, K, H, W], D's logits on the mixed image.
        d_real: Tensor[B, K, H, W], D's logits on the real image.
        d_fake: Tensor[B, K, H, W], D's logits on the fake image.
        mask: Tensor[B, 1, H, W] from :func:`generate_labelmix`.

    Returns:
        scalar Tensor (unweighted; OASIS multiplies by 10, Cityscapes 5).
    """
    target = mask * d_real + (1 - mask) * d_fake
    return F.mse_loss(target, d_mixed)
