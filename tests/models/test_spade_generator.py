import pytest
import torch
import torch.nn.functional as F

from catgen.models.generators.spade_generator import SPADEGenerator
from catgen.registry import MODELS

# sum(p.numel()) of the official NVlabs/SPADE SPADEGenerator at official widths (ngf 64), as
# measured by building it for ADE20K (semantic_nc 151, 256x256, no instance edges).
OFFICIAL_ADE20K_G = 96_492_483
OFFICIAL_ADE20K_G_VAE = 111_942_595
# the official ConvEncoder (netE) at ngf 64, crop 256 (tests/models/test_spade_encoder.py)
OFFICIAL_E = 10_463_424


def onehot(b=2, c=4, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c, (b, h, w), generator=g)
    return F.one_hot(label, c).permute(0, 3, 1, 2).float()


def tiny(**kw):
    cfg = dict(num_classes=4, base_channels=2, crop_size=32, spade_hidden=8)
    cfg.update(kw)
    return SPADEGenerator(**cfg)


@pytest.mark.slow
def test_official_parameter_count_and_key_names():
    with torch.device('meta'):
        g = SPADEGenerator(151)
        g_vae = SPADEGenerator(151, use_vae=True)
    assert sum(p.numel() for p in g.parameters()) == OFFICIAL_ADE20K_G
    # with use_vae the generator holds the style encoder (official netE, trained with netG)
    decoder = sum(p.numel() for n, p in g_vae.named_parameters() if not n.startswith('encoder.'))
    assert decoder == OFFICIAL_ADE20K_G_VAE
    assert sum(p.numel() for p in g_vae.encoder.parameters()) == OFFICIAL_E
    assert sum(p.numel() for p in g_vae.parameters()) == OFFICIAL_ADE20K_G_VAE + OFFICIAL_E
    keys = set(g.state_dict())
    # official checkpoint names (netG state dict) load as they are
    for k in ('fc.weight', 'head_0.conv_0.weight_orig', 'head_0.conv_0.weight_u',
              'up_0.conv_s.weight_orig', 'up_0.norm_s.mlp_shared.0.weight',
              'G_middle_1.norm_1.mlp_gamma.bias', 'conv_img.weight'):
        assert k in keys, k
    assert tuple(g.fc.weight.shape) == (1024, 151, 3, 3)


def test_shapes_range_and_block_features():
    g = tiny()
    seg = onehot()
    img, feats = g(seg, return_features=True)
    assert img.shape == (2, 3, 32, 32)
    assert img.abs().max() <= 1
    assert g.z_dim == 0
    # head_0, G_middle_0, G_middle_1, up_0..up_3 at 1/32 .. 1/1 of 32 px, widths 16ngf .. ngf
    assert list(feats) == list(g.feature_levels()) == ['head_0', 'G_middle_0', 'G_middle_1',
                                                       'up_0', 'up_1', 'up_2', 'up_3']
    assert [f.shape[1] for f in feats.values()] == [32, 32, 32, 16, 8, 4, 2]
    assert [f.shape[-1] for f in feats.values()] == [1, 2, 2, 4, 8, 16, 32]
    g.eval()  # (in train mode spectral norm's power iteration changes weights every call)
    assert torch.equal(g(seg), g(seg))  # deterministic without VAE


def test_non_square_and_upsampling_variants():
    g = tiny()
    assert g(onehot(h=32, w=64)).shape == (2, 3, 32, 64)
    more = tiny(num_upsampling_layers='more', crop_size=64)
    _, feats = more(onehot(h=64, w=64), return_features=True)
    assert [f.shape[-1] for f in feats.values()] == [1, 2, 4, 8, 16, 32, 64]
    most = tiny(num_upsampling_layers='most', crop_size=128, base_channels=2)
    img, feats = most(onehot(h=128, w=128), return_features=True)
    assert img.shape == (2, 3, 128, 128)
    assert len(feats) == 8 and feats['up_4'].shape[1] == 1  # up_4 has ngf // 2 channels
    with pytest.raises(ValueError, match='divisible'):
        g(onehot(h=48, w=48))
    with pytest.raises(ValueError, match='num_upsampling_layers'):
        tiny(num_upsampling_layers='many')


def test_no_noise_without_vae():
    g = tiny()
    seg = onehot()
    assert g(seg, z=torch.zeros(2, 0)).shape == (2, 3, 32, 32)  # empty z is accepted
    with pytest.raises(ValueError, match='takes no noise'):
        g(seg, z=torch.randn(2, 8))


def test_vae_mode_uses_z():
    g = tiny(use_vae=True, z_dim=8, crop_size=64, aspect_ratio=2.0)
    assert g.z_dim == 8 and (g.sh, g.sw) == (1, 2)
    assert isinstance(g.fc, torch.nn.Linear) and g.fc.out_features == 32 * 1 * 2
    seg = onehot(h=32, w=64)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    g.eval()
    a, b = g(seg, z), g(seg, z)
    assert a.shape == (2, 3, 32, 64) and torch.allclose(a, b)
    assert not torch.allclose(a, g(seg, -z))
    torch.manual_seed(0)
    assert g(seg).shape == (2, 3, 32, 64)  # z drawn inside
    with pytest.raises(ValueError, match='z must be'):
        g(seg, torch.randn(2, 7))
    with pytest.raises(ValueError, match='built for 32x64'):
        g(onehot(h=64, w=64))


def test_gradients_reach_every_parameter_and_the_label_map():
    g = tiny(crop_size=64)
    # 64 px: a 2x2 latent grid; at 1x1 the fc output can be constant over the batch and every
    # path from it crosses a batch norm, which removes constants (zero gradient, as official)
    seg = onehot(h=64, w=64).requires_grad_(True)
    g(seg).square().mean().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None, name
    assert g.fc.weight.grad.abs().sum() > 0
    assert g.conv_img.weight.grad.abs().sum() > 0
    assert g.head_0.norm_0.mlp_gamma.weight.grad.abs().sum() > 0
    assert seg.grad is not None and seg.grad.abs().sum() > 0


def test_official_init_and_spectral_norm_option():
    g = tiny(base_channels=4)
    assert torch.count_nonzero(g.fc.bias) == 0  # official init: biases 0
    assert g.fc.weight.std() < 0.05  # xavier_normal with gain 0.02
    assert hasattr(g.head_0.conv_0, 'weight_orig')
    plain = tiny(spectral_norm=False, norm_type='instance', init_type='none', crop_size=64)
    assert not hasattr(plain.head_0.conv_0, 'weight_orig')
    assert plain(onehot(h=64, w=64)).shape == (2, 3, 64, 64)  # instance norm needs > 1x1


def test_registry_build():
    g = MODELS.build(dict(type='SPADEGenerator', num_classes=4, base_channels=2, crop_size=32,
                          spade_hidden=8))
    assert isinstance(g, SPADEGenerator)


@pytest.mark.slow
def test_instance_edge_channel_widens_every_label_input():
    """Official semantic_nc = label_nc + 1 with instance edges: every layer reading the label map
    (fc, 18 SPADE embedding convs at 'normal') gains one input channel; the class slices do not
    cover it."""
    with torch.device('meta'):
        g = SPADEGenerator(35)
        g_edge = SPADEGenerator(35, extra_label_channels=1)
        g_36 = SPADEGenerator(36)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    spade_convs = [s for s in g_edge.class_slices() if s.module.endswith('mlp_shared.0')]
    assert len(spade_convs) == 18  # 7 blocks x 2 + 4 learned shortcuts
    assert count(g_edge) - count(g) == 1024 * 3 * 3 + 18 * 128 * 3 * 3
    assert count(g_edge) == count(g_36)  # the official network for 35 + 1 channels
    assert tuple(g_edge.fc.weight.shape) == (1024, 36, 3, 3)
    assert g_edge.num_classes == 35 and g_edge.label_nc == 36


def test_edge_channel_is_read_and_checked():
    g = tiny(extra_label_channels=1)
    g.check_protocol()
    seg = torch.cat([onehot(), torch.zeros(2, 1, 32, 32)], 1).requires_grad_()
    g(seg).square().mean().backward()
    assert seg.grad[:, -1].abs().sum() > 0  # the edge channel is read
    with pytest.raises(ValueError, match=r'seg must be Tensor\[B, 5, H, W\]'):
        g(onehot())
