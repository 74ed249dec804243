import pytest
import torch

from catgen.models.discriminators.oasis_discriminator import OASISDiscriminator, OASISDResBlock
from catgen.registry import MODELS


@pytest.fixture(autouse=True)
def _one_thread():
    """CPU tests run beside other processes on 2 cores: extra threads only oversubscribe."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_d(**kw):
    cfg = dict(num_classes=5, base_channels=2, channel_multipliers=(2, 2, 4, 4))
    cfg.update(kw)
    return OASISDiscriminator(**cfg)


def test_official_widths():
    with torch.device('meta'):
        d = OASISDiscriminator(151)
    assert [b.conv2[1].out_channels for b in d.body_down] == [128, 128, 256, 256, 512, 512]
    assert [(b.conv1[-1].in_channels, b.conv2[1].out_channels) for b in d.body_up] == [
        (512, 512), (1024, 256), (512, 256), (512, 128), (256, 128), (256, 64)]
    assert (d.layer_up_last.in_channels, d.layer_up_last.out_channels) == (64, 152)


def test_registered_and_output_shape():
    d = MODELS.build(dict(type='OASISDiscriminator', num_classes=5, base_channels=2,
                          channel_multipliers=(2, 2, 4, 4)))
    img = torch.rand(2, 3, 32, 48) * 2 - 1
    assert d(img).shape == (2, 6, 32, 48)
    with pytest.raises(ValueError, match='divisible by 16'):
        d(torch.zeros(1, 3, 24, 32))


def test_features_by_module_name():
    d = tiny_d()
    logits, feats = d(torch.randn(1, 3, 32, 32), return_features=True)
    assert list(feats) == [f'body_down.{i}' for i in range(4)] + [f'body_up.{i}' for i in range(4)]
    assert [f.shape[-1] for f in feats.values()] == [16, 8, 4, 2, 4, 8, 16, 32]
    assert [f.shape[1] for f in feats.values()] == [4, 4, 8, 8, 8, 4, 4, 2]
    modules = dict(d.named_modules())
    assert all(name in modules for name in feats) and 'layer_up_last' in modules
    assert torch.equal(logits, d.layer_up_last(feats['body_up.3']))


def test_model_protocol_levels_and_class_slice():
    d = tiny_d()
    levels = d.input_levels()
    assert levels[:2] == [['body_down.0'], ['body_down.1']]  # highest resolution first
    modules = dict(d.named_modules())
    assert modules['body_down.0'].first and not modules['body_down.1'].first
    (s,) = d.class_slices()
    assert (s.module, s.kind, s.start) == ('layer_up_last', 'output', 1)  # row 0 = fake
    d.check_protocol()
    logits, feats = d(torch.randn(1, 3, 32, 32), None, return_features=True)
    assert tuple(feats) == d.feature_levels()


def test_log_likelihood_real_by_hand():
    d = tiny_d()
    logits = torch.randn(2, d.num_classes + 1, 4, 4)
    p = logits.softmax(1)
    expected = torch.log(1 - p[:, 0]).mean()
    assert float(d.log_likelihood(logits, None, 'real')) == pytest.approx(float(expected), rel=1e-5)


def test_gradients_reach_every_parameter():
    d = tiny_d(init_gain=None)
    out = d(torch.randn(2, 3, 32, 32))
    (out * torch.randn_like(out)).sum().backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_spectral_norm_exactly_where_official():
    d = tiny_d()
    sn = {n for n, m in d.named_modules() if hasattr(m, 'weight_orig')}
    convs = {n for n, m in d.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert sn == convs - {'layer_up_last'}
    assert 'body_down.0.conv1.0' in sn and 'body_down.1.conv1.1' in sn
    assert 'body_up.0.conv1.2' in sn and 'body_up.0.conv2.1' in sn
    # learned shortcuts only where widths change (with bias, as official)
    assert {n for n in convs if n.endswith('conv_s')} == {
        'body_down.0.conv_s', 'body_down.2.conv_s', 'body_up.1.conv_s', 'body_up.2.conv_s',
        'body_up.3.conv_s'}
    assert d.body_down[0].conv_s.bias is not None
    assert not any(hasattr(m, 'weight_orig') for m in tiny_d(spectral_norm=False).modules())


def test_block_resampling_and_shortcut_order():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 8)
    first = OASISDResBlock(2, 3, -1, first=True, spectral_norm=False)
    down = OASISDResBlock(2, 3, -1, spectral_norm=False)
    up = OASISDResBlock(2, 3, 1, spectral_norm=False)
    pool = torch.nn.functional.avg_pool2d
    # the first block pools then convolves in its shortcut, other down blocks the reverse:
    # both are linear so they agree; the main path of the first block has no leading LeakyReLU
    assert torch.allclose(first.shortcut(x), first.conv_s(pool(x, 2)), atol=1e-6)
    assert torch.allclose(down.shortcut(x), pool(down.conv_s(x), 2), atol=1e-6)
    assert torch.allclose(first(x) - first.shortcut(x),
                          pool(first.conv2(first.conv1[0](x)), 2), atol=1e-6)
    assert up(x).shape == (1, 3, 16, 16) and down(x).shape == (1, 3, 4, 4)
