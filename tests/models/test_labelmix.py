import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.losses.labelmix import generate_labelmix, labelmix_loss


def make_batch(seed=0, c=6):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c, (2, 8, 8), generator=g)
    fake = torch.rand(2, 3, 8, 8, generator=g)
    real = torch.rand(2, 3, 8, 8, generator=g) + 2  # disjoint ranges: tells the source apart
    return label, fake, real


def test_mask_is_binary_and_constant_per_class():
    label, fake, real = make_batch()
    mixed, mask = generate_labelmix(label, fake, real, generator=torch.Generator().manual_seed(3))
    assert mask.shape == (2, 1, 8, 8) and mask.dtype == real.dtype
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    for c in label.unique():
        values = mask[:, 0][label == c]
        assert (values == values[0]).all()  # one bit per class, shared across the batch
    assert torch.equal(mixed, mask * real + (1 - mask) * fake)
    assert torch.equal(mixed >= 2, mask.bool().expand_as(mixed))


def test_deterministic_with_generator_and_both_bits_occur():
    label, fake, real = make_batch()
    a = generate_labelmix(label, fake, real, generator=torch.Generator().manual_seed(7))[1]
    b = generate_labelmix(label, fake, real, generator=torch.Generator().manual_seed(7))[1]
    assert torch.equal(a, b)
    gen = torch.Generator().manual_seed(0)
    seen = torch.stack([generate_labelmix(label, fake, real, generator=gen)[1]
                        for _ in range(40)])
    per_class = [seen[:, :, 0][:, label == c][:, 0] for c in range(6)]
    assert all(0 < v.mean() < 1 for v in per_class)  # every class is sometimes real, sometimes fake
    # classes draw independent bits: not all classes equal in every draw
    assert any(len({int(v[i]) for v in per_class}) == 2 for i in range(40))


def test_onehot_label_equals_ids():
    label, fake, real = make_batch()
    seg = F.one_hot(label, 6).permute(0, 3, 1, 2).float()
    m1 = generate_labelmix(label, fake, real, generator=torch.Generator().manual_seed(1))[1]
    m2 = generate_labelmix(seg, fake, real, generator=torch.Generator().manual_seed(1))[1]
    assert torch.equal(m1, m2)


def test_loss_zero_for_pixelwise_affine_discriminator():
    label, fake, real = make_batch()
    torch.manual_seed(0)
    d = nn.Conv2d(3, 7, 1)  # per-pixel affine: D(m*r + (1-m)*f) = m*D(r) + (1-m)*D(f)
    mixed, mask = generate_labelmix(label, fake, real, generator=torch.Generator().manual_seed(2))
    assert labelmix_loss(d(mixed), d(real), d(fake), mask).item() == pytest.approx(0, abs=1e-10)
    d3 = nn.Conv2d(3, 7, 3, padding=1)  # mixes neighbours across class borders: not consistent
    assert labelmix_loss(d3(mixed), d3(real), d3(fake), mask).item() > 1e-4


def test_loss_value_and_gradients():
    torch.manual_seed(0)
    d_mixed, d_real, d_fake = (torch.randn(2, 4, 3, 3, requires_grad=True) for _ in range(3))
    mask = (torch.rand(2, 1, 3, 3) > 0.5).float()
    loss = labelmix_loss(d_mixed, d_real, d_fake, mask)
    expected = ((mask * d_real + (1 - mask) * d_fake - d_mixed) ** 2).mean()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in (d_mixed, d_real, d_fake))


def test_labelmix_with_num_classes_draws_one_bit_per_class_id():
    """num_classes: the bit of class c depends on c and the RNG only, not on the batch."""
    torch.manual_seed(0)
    fake, real = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    label = torch.randint(0, 6, (2, 8, 8))
    full = generate_labelmix(label, fake, real, generator=torch.Generator().manual_seed(5),
                             num_classes=6)[1]
    # each half of the batch, with the same RNG, gets the global batch's mask
    for i in range(2):
        part = generate_labelmix(label[i:i + 1], fake[i:i + 1], real[i:i + 1],
                                 generator=torch.Generator().manual_seed(5), num_classes=6)[1]
        assert torch.equal(part, full[i:i + 1])
    bits = torch.randint(0, 2, (6,), generator=torch.Generator().manual_seed(5))
    assert torch.equal(full[:, 0].long(), bits[label])
    with pytest.raises(ValueError, match='num_classes=6'):
        generate_labelmix(label + 1, fake, real, num_classes=6)
