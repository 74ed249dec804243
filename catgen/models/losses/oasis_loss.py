"""OASIS's class-balanced N+1 adversarial loss (official boschresearch/OASIS ``models/losses.py``).

The discriminator classifies every pixel into N+1 classes: channel 0 = fake, channel c + 1 =
semantic channel c. Real pixels (D on real images, and G's loss on generated images) target
``argmax(seg) + 1`` and are weighted per class; generated pixels in D's loss target 0, unweighted.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


def _distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def oasis_class_weights(seg, contain_dontcare_label=True, sync=False):
    """Per-class balancing weights of one batch, as the official ``get_class_balancing``.

    ``w_c = (B * H * W) / (pixels of class c * number of classes present)``, where "pixels" is
    the sum of the map over batch and space and "present" counts the classes with pixels > 0.
    With ``contain_dontcare_label`` channel 0 counts as absent and gets weight 0. Absent classes
    get weight 0 here (the official code leaves them at inf; no pixel ever selects them).

    Args:
        seg: Tensor[B, C, H, W], one-hot (or soft) label map, channel 0 = don't care.
        contain_dontcare_label: treat channel 0 as "don't care".
        sync: under ``torch.distributed`` with more than one process, count pixels over the
            global batch (one all-reduce of the per-class counts and of ``B * H * W``), so every
            rank gets the weights of the whole batch; no effect with one process. A collective:
            every rank must call it.

    Returns:
        Tensor[C] float weights.
    """
    occurrence = seg.detach().float().sum(dim=(0, 2, 3))
    num_pixels = seg.shape[0] * seg.shape[2] * seg.shape[3]
    if sync and _distributed():
        counts = torch.cat([occurrence, occurrence.new_full((1,), float(num_pixels))])
        dist.all_reduce(counts, op=dist.ReduceOp.SUM)
        occurrence, num_pixels = counts[:-1], float(counts[-1])
    if contain_dontcare_label:
        occurrence[0] = 0
    present = occurrence > 0
    num_present = present.sum()
    weights = torch.zeros_like(occurrence)
    if num_present > 0:
        weights[present] = num_pixels / (occurrence[present] * num_present)
    return weights


def oasis_class_weight_map(seg, contain_dontcare_label=True, sync=False):
    """Per-pixel weights: the weight of each pixel's (argmax) class.

    seg: Tensor[B, C, H, W] -> Tensor[B, H, W] float. ``sync``: see :func:`oasis_class_weights`.
    """
    weights = oasis_class_weights(seg, contain_dontcare_label, sync)
    return weights[seg.argmax(dim=1)]


def oasis_n1_target(seg, for_real):
    """N+1 targets: ``argmax(seg) + 1`` for real pixels, 0 (fake) otherwise.

    seg: Tensor[B, C, H, W]; for_real: bool -> LongTensor[B, H, W].
    """
    if for_real:
        return seg.argmax(dim=1) + 1
    return torch.zeros(seg.shape[0], *seg.shape[2:], dtype=torch.long, device=seg.device)


@MODELS.register_module()
class OASISLoss(nn.Module):
    """Class-balanced N+1 per-pixel cross-entropy.

    ``for_real=True``: mean over all pixels of ``w[class] * CE(logits, class + 1)`` (D on real
    images, and G's adversarial loss); ``for_real=False``: mean of ``CE(logits, 0)`` (D on
    generated images), unweighted.

    Args:
        class_balancing: weight real terms per class (the official default; False = the
            official ``--no_balancing_inloss``, all weights 1).
        contain_dontcare_label: channel 0 is "don't care" and gets weight 0 (catgen's convention).
        loss_weight: factor on the returned loss.
        sync_class_weights: under DDP (more than one process), compute the class weights from
            the global batch's pixel counts (all-reduced), as one process with the whole batch
            would; no effect with one process. False: each rank weights by its own sub-batch.
    """

    def __init__(self, class_balancing=True, contain_dontcare_label=True, loss_weight=1.0,
                 sync_class_weights=True):
        super().__init__()
        self.class_balancing = class_balancing
        self.contain_dontcare_label = contain_dontcare_label
        self.loss_weight = loss_weight
        self.sync_class_weights = sync_class_weights

    def forward(self, logits, seg, for_real):
        """Loss value.

        Args:
            logits: Tensor[B, C + 1, H, W], discriminator output.
            seg: Tensor[B, C, H, W], one-hot label map of the same size.
            for_real: True for real-class targets (weighted), False for the fake target.

        Returns:
            scalar Tensor.
        """
        if logits.shape[0] != seg.shape[0] or logits.shape[1] != seg.shape[1] + 1 \
                or logits.shape[2:] != seg.shape[2:]:
            raise ValueError(f'OASISLoss expects logits [B, C+1, H, W] and seg [B, C, H, W]; '
                             f'got {tuple(logits.shape)} and {tuple(seg.shape)}')
        target = oasis_n1_target(seg, for_real)
        loss = F.cross_entropy(logits, target, reduction='none')
        if for_real and self.class_balancing:
            loss = loss * oasis_class_weight_map(seg, self.contain_dontcare_label,
                                                 self.sync_class_weights)
        return self.loss_weight * loss.mean()
