import pytest
import torch
import torch.nn.functional as F

from catgen.models.discriminators.oasis_discriminator import OASISDiscriminator
from catgen.models.generators.oasis_generator import OASISGenerator
from catgen.registry import MODELS


@pytest.fixture(autouse=True)
def _one_thread():
    """CPU tests run beside other processes on 2 cores: extra threads only oversubscribe."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)

# Counted as the official code counts once built: sum(p.numel()), spectral norm's weight_orig.
OFFICIAL_COUNTS = {  # num_classes, crop_size, aspect_ratio -> (G, D)
    (151, 256, 1.0): (74_314_691, 22_258_904),  # ADE20K
    (183, 256, 1.0): (75_199_427, 22_260_984),  # COCO-Stuff
    (35, 512, 2.0): (71_107_523, 22_251_364),   # Cityscapes
}


def tiny_g(**kw):
    cfg = dict(num_classes=5, z_dim=4, base_channels=2, channel_multipliers=(4, 4, 2, 1),
               crop_size=32, spade_hidden=8)
    cfg.update(kw)
    return OASISGenerator(**cfg)


def onehot(b=2, c=5, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c, (b, h, w), generator=g)
    return F.one_hot(label, c).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize('key', list(OFFICIAL_COUNTS))
def test_official_parameter_counts(key):
    num_classes, crop, aspect = key
    with torch.device('meta'):
        g = OASISGenerator(num_classes, crop_size=crop, aspect_ratio=aspect)
        d = OASISDiscriminator(num_classes)
    assert sum(p.numel() for p in g.parameters()) == OFFICIAL_COUNTS[key][0]
    assert sum(p.numel() for p in d.parameters()) == OFFICIAL_COUNTS[key][1]


def test_official_geometry():
    with torch.device('meta'):
        ade = OASISGenerator(151)
        city = OASISGenerator(35, crop_size=512, aspect_ratio=2.0)
    assert ade.start_size == (8, 8) and ade.output_size == (256, 256)
    assert city.start_size == (8, 16) and city.output_size == (256, 512)
    assert ade.fc.in_channels == 215  # 64 noise + 151 label channels
    assert [b.conv_1.out_channels for b in ade.body] == [1024, 1024, 512, 256, 128, 64]
    assert [b.learned_shortcut for b in ade.body] == [False, False, True, True, True, True]


def test_registered_and_output_shape_range():
    g = MODELS.build(dict(type='OASISGenerator', num_classes=5, z_dim=4, base_channels=2,
                          channel_multipliers=(4, 4, 2, 1), crop_size=32, spade_hidden=8))
    assert isinstance(g, OASISGenerator) and g.z_dim == 4
    out = g(onehot())
    assert out.shape == (2, 3, 32, 32)
    assert out.min() >= -1 and out.max() <= 1


def test_non_square_start_size():
    g = tiny_g(crop_size=64, aspect_ratio=2.0)
    assert g.start_size == (8, 16)
    assert g(onehot(h=32, w=64)).shape == (2, 3, 32, 64)


def test_wrong_size_or_classes_is_explained():
    g = tiny_g()
    with pytest.raises(ValueError, match='crop_size'):
        g(onehot(h=64, w=64))
    with pytest.raises(ValueError, match=r'\[B, 5, H, W\]'):
        g(onehot(c=4))
    with pytest.raises(ValueError, match='z must have shape'):
        g(onehot(), torch.randn(2, 3))


def test_noise_changes_output_and_given_z_is_used():
    g = tiny_g(init_gain=None).eval()  # default init: larger weights, clearer differences
    seg = onehot()
    z1, z2 = torch.randn(2, 4), torch.randn(2, 4)
    with torch.no_grad():
        a, b, c = g(seg, z1), g(seg, z1), g(seg, z2)
        d, e = g(seg), g(seg)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert not torch.allclose(d, e)


def test_noise_is_repeated_in_front_of_seg():
    g = tiny_g()
    seg, z = onehot(), torch.randn(2, 4)
    x = g.make_input(seg, z)
    assert x.shape == (2, 9, 32, 32)
    assert torch.equal(x[:, 4:], seg)
    assert torch.equal(x[:, :4], z[:, :, None, None].expand(2, 4, 32, 32))


def test_pixel_noise_off_is_the_official_repeated_noise():
    g = tiny_g(init_gain=None).eval()
    seg, z = onehot(), torch.randn(2, 4)
    full = g.spatial_noise(z)
    assert torch.equal(full, z[:, :, None, None].expand(2, 4, 32, 32))
    with torch.no_grad():
        assert torch.equal(g(seg, z), g(seg, full))  # the 3D form of the same noise


def test_pixel_noise_is_iid_per_pixel_and_the_full_noise_fixes_the_output():
    g = tiny_g(init_gain=None, pixel_noise_std=0.5).eval()
    seg, z = onehot(), torch.randn(2, 4)
    full = g.spatial_noise(z, generator=torch.Generator().manual_seed(1))
    pixel = full - z[:, :, None, None]
    assert pixel.shape == (2, 4, 32, 32)
    assert abs(pixel.std().item() - 0.5) < 0.02 and abs(pixel.mean().item()) < 0.02
    # neighbouring pixels are independent: correlation of horizontal neighbours ~ 0
    a, b = pixel[..., :-1].flatten(), pixel[..., 1:].flatten()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 0.05
    again = g.spatial_noise(z, generator=torch.Generator().manual_seed(1))
    assert torch.equal(full, again)  # reproducible from a torch.Generator
    with torch.no_grad():
        assert not torch.allclose(g(seg, z), g(seg, z))  # fresh per-pixel noise per call
        assert torch.equal(g(seg, full), g(seg, full))  # the full 3D noise is used as given
        assert torch.equal(g.make_input(seg, full)[:, :4], full)


def test_pixel_noise_bad_arguments():
    with pytest.raises(ValueError, match='pixel_noise_std must be >= 0'):
        tiny_g(pixel_noise_std=-1)
    with pytest.raises(ValueError, match='needs noise channels'):
        tiny_g(z_dim=0, pixel_noise_std=1.0)
    g = tiny_g()
    with pytest.raises(ValueError, match=r'\[B, z_dim, H, W\]'):
        g(onehot(), torch.randn(2, 4, 16, 16))


def test_no_noise_variant():
    g = tiny_g(z_dim=0)
    assert g.z_dim == 0 and g.fc.in_channels == 5
    g.eval()
    with torch.no_grad():
        assert torch.equal(g(onehot()), g(onehot()))


def test_gradients_reach_every_parameter():
    g = tiny_g(init_gain=None)
    out = g(onehot(), torch.randn(2, 4))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_spectral_norm_exactly_on_block_convs():
    g = tiny_g()
    sn = {n for n, m in g.named_modules() if hasattr(m, 'weight_orig')}
    expected = {f'body.{i}.{c}' for i in range(3) for c in ('conv_0', 'conv_1')}
    expected |= {'body.1.conv_s', 'body.2.conv_s'}  # 8->4 and 4->2 change width
    assert sn == expected
    assert not any(hasattr(m, 'weight_orig') for m in tiny_g(spectral_norm=False).modules())


def test_official_init():
    g = tiny_g()
    assert g.fc.bias.abs().sum() == 0 and g.body[0].norm_0.mlp_gamma.bias.abs().sum() == 0
    w = g.body[0].conv_0.weight_orig  # xavier normal, gain 0.02: std = 0.02*sqrt(2/(fan_in+out))
    fan = 8 * 9 + 8 * 9
    assert w.std().item() == pytest.approx(0.02 * (2 / fan) ** 0.5, rel=0.3)


def test_return_features():
    g = tiny_g()
    out, feats = g(onehot(), torch.zeros(2, 4), return_features=True)
    assert out.shape == (2, 3, 32, 32)
    assert list(feats) == list(g.feature_levels()) == ['body.0', 'body.1', 'body.2']
    assert [tuple(f.shape) for f in feats.values()] == [(2, 8, 8, 8), (2, 4, 16, 16),
                                                        (2, 2, 32, 32)]
