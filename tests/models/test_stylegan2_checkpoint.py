"""Converting rosinality/stylegan2-pytorch checkpoints (CDC's and DCL's source models)."""
import argparse

import pytest
import torch

from catgen.models.discriminators.stylegan2_discriminator import StyleGAN2Discriminator
from catgen.models.generators.stylegan2_generator import StyleGAN2Generator
from catgen.models.stylegan2_checkpoint import convert_rosinality_checkpoint


def rosinality_state(module):
    """The state dict as rosinality saves it: catgen's keys plus the blur ``kernel`` buffers."""
    sd = dict(module.state_dict())
    for name, buf in module.named_buffers():
        if name.endswith('kernel'):
            sd[name] = buf.clone()
    return sd


@pytest.fixture(scope='module')
def official():
    torch.manual_seed(0)
    kw = dict(size=32, style_dim=16, n_mlp=2, channel_multiplier=1)
    g, ema = StyleGAN2Generator(**kw), StyleGAN2Generator(**kw)
    d = StyleGAN2Discriminator(size=32, channel_multiplier=1)
    ckpt = dict(g=rosinality_state(g), g_ema=rosinality_state(ema), d=rosinality_state(d),
                g_optim={}, d_optim={},
                args=argparse.Namespace(size=32, latent=16, n_mlp=2, channel_multiplier=1))
    return ckpt, g, ema, d


def test_key_names_are_rosinality(official):
    ckpt = official[0]
    g, d = ckpt['g'], ckpt['d']
    for key in ('style.1.weight', 'style.2.bias', 'input.input', 'conv1.conv.weight',
                'conv1.conv.modulation.weight', 'conv1.noise.weight', 'conv1.activate.bias',
                'to_rgb1.conv.weight', 'to_rgb1.bias', 'convs.0.conv.blur.kernel',
                'to_rgbs.0.upsample.kernel', 'noises.noise_0', 'convs.5.conv.weight'):
        assert key in g, key
    assert g['convs.0.conv.weight'].shape == (1, 512, 512, 3, 3)
    for key in ('convs.0.0.weight', 'convs.0.1.bias', 'convs.1.conv1.0.weight',
                'convs.1.conv2.0.kernel', 'convs.1.conv2.1.weight', 'convs.1.skip.0.kernel',
                'convs.1.skip.1.weight', 'final_conv.0.weight', 'final_linear.0.weight',
                'final_linear.1.bias'):
        assert key in d, key


def test_convert_loads_and_reproduces_outputs(official):
    ckpt, g, ema, d = official
    out = convert_rosinality_checkpoint(ckpt)
    meta, sd = out['meta'], out['state_dict']
    assert meta['generator_cfg'] == dict(type='StyleGAN2Generator', size=32, style_dim=16,
                                         n_mlp=2, channel_multiplier=1)
    assert meta['discriminator_cfg'] == dict(type='StyleGAN2Discriminator', size=32,
                                             channel_multiplier=1)
    assert not any(k.endswith('.kernel') for k in sd)
    assert int(sd['generator_ema.steps']) == 0
    g2 = StyleGAN2Generator(32, 16, 2, 1, noise_mode='const')
    g2.load_state_dict({k[len('generator_ema.module.'):]: v for k, v in sd.items()
                        if k.startswith('generator_ema.module.')})
    d2 = StyleGAN2Discriminator(32, 1)
    d2.load_state_dict({k[len('discriminator.'):]: v for k, v in sd.items()
                        if k.startswith('discriminator.')})
    z = torch.randn(2, 16)
    ema.noise_mode = 'const'
    with torch.no_grad():
        assert torch.equal(g2(None, z), ema(None, z))
        img = torch.randn(2, 3, 32, 32)
        assert torch.equal(d2(img), d(img))


def test_convert_reports_every_problem(official):
    ckpt = dict(official[0])
    g = dict(ckpt['g'])
    g['convs.0.conv.blur.kernel'] = torch.ones(4, 4)
    g.pop('to_rgb1.bias')
    g['extra.weight'] = torch.zeros(1)
    ckpt['g'] = g
    ckpt['args'] = argparse.Namespace(size=64, latent=16, n_mlp=2, channel_multiplier=1)
    with pytest.raises(ValueError) as err:
        convert_rosinality_checkpoint(ckpt)
    msg = str(err.value)
    for part in ('blur kernel', 'to_rgb1.bias', 'extra.weight', 'args.size=64'):
        assert part in msg, part
    with pytest.raises(ValueError, match="'g', 'g_ema'"):
        convert_rosinality_checkpoint({'state_dict': {}})


def test_tool_writes_a_catgen_checkpoint(official, tmp_path):
    from tools.convert_stylegan2_checkpoint import main
    src = tmp_path / 'cdc_source.pt'
    torch.save(official[0], src)
    out = tmp_path / 'converted.pth'
    assert main([str(src), '--out', str(out)]) == 0
    ckpt = torch.load(out, weights_only=True)
    assert ckpt['meta']['parts'] == ['generator', 'generator_ema', 'discriminator']
    with pytest.raises(SystemExit, match='does not exist'):
        main([str(tmp_path / 'missing.pt'), '--out', str(out)])
