import pytest
import torch
import torch.nn.functional as F

from catgen.models.discriminators.multiscale_discriminator import MultiScalePatchGANDiscriminator
from catgen.models.discriminators.patchgan_discriminator import PatchGANDiscriminator
from catgen.registry import MODELS


def onehot(b=2, c=4, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c, (b, h, w), generator=g)
    return F.one_hot(label, c).permute(0, 3, 1, 2).float()


def image(b=2, h=32, w=32, seed=1):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.slow
def test_official_parameter_count_and_key_names():
    # measured by building the official NVlabs/SPADE MultiscaleDiscriminator (ADE20K: 151 + 3)
    with torch.device('meta'):
        d = MultiScalePatchGANDiscriminator(151)
    assert sum(p.numel() for p in d.parameters()) == 5_836_930
    keys = set(d.state_dict())
    for k in ('discriminator_0.model0.0.weight', 'discriminator_0.model0.0.bias',
              'discriminator_1.model1.0.0.weight_orig', 'discriminator_1.model3.0.0.weight_u',
              'discriminator_0.model4.0.bias'):
        assert k in keys, k
    assert 'discriminator_0.model1.0.0.bias' not in keys  # no bias before instance norm
    assert tuple(d.discriminator_0.model0[0].weight.shape) == (64, 154, 4, 4)


def test_patchgan_outputs():
    d = PatchGANDiscriminator(num_classes=4, base_channels=4)
    feats = d(image(), onehot())
    assert len(feats) == 5
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32, 1]
    # 4x4 convs with padding 2: stride 2 -> H/2 + 1, stride 1 -> H + 1
    assert [f.shape[-1] for f in feats] == [17, 9, 5, 6, 7]
    assert feats[-1].shape == (2, 1, 7, 7)
    pre = d.model0[0](torch.cat([onehot(), image()], 1))
    assert torch.allclose(feats[0], F.leaky_relu(pre, 0.2))  # LeakyReLU(0.2) after conv
    with pytest.raises(ValueError, match='num_classes=4'):
        d(image(), onehot(c=5))


def test_patchgan_input_is_seg_then_image():
    d = PatchGANDiscriminator(num_classes=4, base_channels=4, num_layers=2).eval()
    img, seg = image(), onehot()
    assert torch.equal(d(img, seg)[-1], d.forward_input(torch.cat([seg, img], 1))[-1])
    assert d.model0[0].in_channels == 7


def test_multiscale_structure_and_downsampling():
    d = MultiScalePatchGANDiscriminator(num_classes=4, num_scales=3, num_layers=3,
                                        base_channels=4).eval()  # fixed spectral norm
    img, seg = image(), onehot()
    out = d(img, seg)
    assert len(out) == 3 and all(len(o) == 4 for o in out)
    assert [o[-1].shape[1] for o in out] == [1, 1, 1]
    # the second scale sees the input halved by the official average pooling
    img2, seg2 = d.downsample(img), d.downsample(seg)
    assert img2.shape[-2:] == (16, 16)
    # count_include_pad=False: the corner is the mean of its 2x2 window
    assert torch.allclose(img2[:, :, 0, 0], img[:, :, :2, :2].mean((2, 3)))
    ref = d.discriminator_1(img2, seg2)
    assert all(torch.allclose(a, b) for a, b in zip(out[1], ref))


def test_multiscale_gradients():
    d = MultiScalePatchGANDiscriminator(num_classes=4, base_channels=4)
    img = image().requires_grad_(True)
    out = d(img, onehot())
    sum(o[-1].mean() for o in out).backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert img.grad.abs().sum() > 0


def test_norm_options_and_registry():
    d = MODELS.build(dict(type='MultiScalePatchGANDiscriminator', num_classes=4,
                          base_channels=4, spectral_norm=False, norm_type='none'))
    assert d.discriminator_0.model1[0].bias is not None  # bias kept without a norm
    assert not hasattr(d.discriminator_0.model1[0], 'weight_orig')
    assert len(d(image(), onehot())) == 2
    with pytest.raises(ValueError, match='norm_type'):
        PatchGANDiscriminator(4, norm_type='layer')
