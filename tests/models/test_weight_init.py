"""The official initialisation as MMEngine init_cfg: applied at build, overridable, never twice."""
import pytest
import torch

from catgen.models.discriminators import OASISDiscriminator
from catgen.models.generators import OASISGenerator, SPADEGenerator
from catgen.models.weight_init import official_init_cfg


def tiny_g(**kw):
    return OASISGenerator(num_classes=5, z_dim=4, base_channels=4, channel_multipliers=(4, 2, 1),
                          crop_size=32, spade_hidden=8, **kw)


def test_official_xavier_zero_biases_and_marked_initialised():
    torch.manual_seed(0)
    g = tiny_g()
    assert g.is_init  # the Runner's init_weights() skips it: source weights loaded later stay
    w = g.body[0].conv_0.weight_orig  # spectral norm: the parameter itself is initialised
    fan = w.shape[1] * 9 + w.shape[0] * 9
    assert w.std().item() == pytest.approx(0.02 * (2 / fan) ** 0.5, rel=0.3)
    assert all(torch.count_nonzero(m.bias) == 0 for m in g.modules()
               if isinstance(m, torch.nn.Conv2d) and m.bias is not None)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    g.init_weights()  # what MMEngine's Runner calls: a no-op for an initialised network
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())


def test_same_seed_same_weights_and_init_cfg_overrides():
    torch.manual_seed(0)
    a = tiny_g().state_dict()
    torch.manual_seed(0)
    b = tiny_g().state_dict()
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    g = tiny_g(init_cfg=dict(type='Constant', val=0.5, bias=0.25, layer='Conv2d'))
    assert torch.all(g.fc.weight == 0.5) and torch.all(g.fc.bias == 0.25)
    d = OASISDiscriminator(num_classes=5, base_channels=2, channel_multipliers=(1, 2, 2),
                           init_gain=None)
    assert d.init_cfg is None and d.is_init  # PyTorch's default initialisation


@pytest.mark.parametrize('init_type', ['normal', 'xavier', 'xavier_uniform', 'kaiming',
                                       'orthogonal', 'none'])
def test_spade_init_types(init_type):
    torch.manual_seed(0)
    g = SPADEGenerator(num_classes=4, base_channels=2, crop_size=32, init_type=init_type)
    assert torch.isfinite(g.fc.weight).all()
    if init_type == 'orthogonal':
        w = g.conv_img.weight.reshape(3, -1)
        assert torch.allclose(w @ w.t(), torch.eye(3) * 0.02 ** 2, atol=1e-6)
    if init_type != 'none':
        assert torch.count_nonzero(g.conv_img.bias) == 0
    if init_type == 'normal':
        assert g.fc.weight.std().item() == pytest.approx(0.02, rel=0.2)
    with pytest.raises(ValueError, match='init_type must be one of'):
        official_init_cfg('bogus')


def test_meta_device_builds_without_initialising():
    with torch.device('meta'):
        g = tiny_g()
    assert g.fc.weight.device.type == 'meta' and g.is_init
