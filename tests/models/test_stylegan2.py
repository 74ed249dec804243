"""StyleGAN2 generator, discriminator and their layers: official parameter counts, the maths of
each layer against a hand computation, and the model protocol."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from catgen.models.discriminators.stylegan2_discriminator import (StyleGAN2Discriminator,
                                                                  minibatch_stddev)
from catgen.models.generators.stylegan2_generator import (StyleGAN2Generator, mix_latents,
                                                          stylegan2_channels)
from catgen.models.layers.equalized import EqualConv2d, EqualLinear, PixelNorm
from catgen.models.layers.modulated_conv import ModulatedConv2d
from catgen.models.layers.upfirdn2d import Blur, Upsample, make_blur_kernel, upfirdn2d
from catgen.models.protocol import TransferableDiscriminator, TransferableGenerator


def tiny_g(**kw):
    kw = dict(dict(size=16, style_dim=8, n_mlp=2, max_channels=8), **kw)
    return StyleGAN2Generator(**kw)


def tiny_d(**kw):
    return StyleGAN2Discriminator(**dict(dict(size=16, max_channels=8), **kw))


@pytest.mark.parametrize('size,g_params,d_params', [(256, 30_034_338, 28_864_129),
                                                    (1024, 30_370_060, 29_012_513)])
def test_parameter_counts_equal_rosinality(size, g_params, d_params):
    with torch.device('meta'):
        g, d = StyleGAN2Generator(size), StyleGAN2Discriminator(size)
    assert sum(p.numel() for p in g.parameters()) == g_params
    assert sum(p.numel() for p in d.parameters()) == d_params
    assert sum(p.numel() for p in g.style.parameters()) == 2_101_248
    assert g.n_latent == 2 * int(math.log2(size)) - 2


def test_channel_table_is_official():
    assert stylegan2_channels(1024, 2) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256,
                                           256: 128, 512: 64, 1024: 32}
    assert stylegan2_channels(256, 1)[64] == 256 and stylegan2_channels(256, 1)[256] == 64


def reference_upfirdn(x, k, up, down, pad):
    """numpy: zero insertion, padding, true 2D convolution (flipped kernel), striding."""
    h, w = x.shape
    z = np.zeros((h * up, w * up))
    z[::up, ::up] = x
    z = np.pad(z, ((pad[0], pad[1]), (pad[0], pad[1])))
    kh, kw = k.shape
    out = np.zeros((z.shape[0] - kh + 1, z.shape[1] - kw + 1))
    kf = k[::-1, ::-1]
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (z[i:i + kh, j:j + kw] * kf).sum()
    return out[::down, ::down]


@pytest.mark.parametrize('up,down,pad', [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)),
                                         (2, 2, (0, 0))])
def test_upfirdn2d_matches_numpy(up, down, pad):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 7, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)  # asymmetric: checks the flip
    out = upfirdn2d(x, k, up=up, down=down, pad=pad)
    ref = reference_upfirdn(x[1, 2].numpy(), k.numpy(), up, down, pad)
    np.testing.assert_allclose(out[1, 2].numpy(), ref, atol=1e-10)


def test_blur_kernel_and_resampling_keep_a_constant():
    k = make_blur_kernel([1, 3, 3, 1])
    assert torch.allclose(k, torch.tensor([1., 3, 3, 1])[:, None] * torch.tensor([1., 3, 3, 1])
                          / 64)
    x = torch.full((1, 2, 8, 8), 3.0)
    up = Upsample()(x)
    assert up.shape == (1, 2, 16, 16)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 3.0))
    blur = Blur(pad=(1, 2))(x)
    assert blur.shape == x.shape and torch.allclose(blur[..., 2:-2, 2:-2], x[..., 2:-2, 2:-2])
    assert 'kernel' not in Blur().state_dict()  # a constant, not saved


def test_equalised_layers_scale_at_run_time():
    lin = EqualLinear(16, 4, bias_init=1.0, lr_mul=0.01)
    x = torch.randn(3, 16)
    expected = x @ (lin.weight * 0.01 / 4).t() + lin.bias * 0.01
    assert torch.allclose(lin(x), expected, atol=1e-6)
    assert lin.weight.std() > 10  # stored as N(0, 1) / lr_mul
    conv = EqualConv2d(3, 5, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight / math.sqrt(27), conv.bias, padding=1),
                          atol=1e-6)
    no_bias = EqualLinear(16, 4, bias=False, activation='fused_lrelu')  # still activated
    x = torch.randn(3, 16)
    assert torch.allclose(no_bias(x), F.leaky_relu(x @ (no_bias.weight / 4).t(), 0.2)
                          * math.sqrt(2), atol=1e-6)
    z = torch.randn(4, 8) * 5
    assert torch.allclose(PixelNorm()(z).pow(2).mean(1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize('upsample', [False, True])
@pytest.mark.parametrize('demodulate', [False, True])
def test_modulated_conv_matches_per_sample_convolution(upsample, demodulate):
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 6, 3, style_dim=5, demodulate=demodulate, upsample=upsample)
    unfused = ModulatedConv2d(4, 6, 3, style_dim=5, demodulate=demodulate, upsample=upsample,
                              fused=False)
    unfused.load_state_dict(conv.state_dict())
    x, style = torch.randn(3, 4, 8, 8), torch.randn(3, 5)
    out = conv(x, style)
    assert out.shape == (3, 6, 16 if upsample else 8, 16 if upsample else 8)
    s = conv.modulation(style)
    for b in range(3):  # hand computation, one sample at a time
        w = conv.weight[0] / math.sqrt(4 * 9) * s[b].view(1, 4, 1, 1)
        if demodulate:
            w = w / torch.sqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        if upsample:
            ref = conv.blur(F.conv_transpose2d(x[b:b + 1], w.transpose(0, 1), stride=2))
        else:
            ref = F.conv2d(x[b:b + 1], w, padding=1)
        assert torch.allclose(out[b:b + 1], ref, atol=1e-5)
    assert torch.allclose(unfused(x, style), out, atol=1e-5)


def test_demodulation_gives_unit_output_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(64, 64, 3, style_dim=8)
    with torch.no_grad():
        out = conv(torch.randn(2, 64, 32, 32), torch.randn(2, 8) * 3)
    assert abs(float(out[..., 1:-1, 1:-1].std()) - 1) < 0.1


def test_generator_forward_features_and_protocol():
    torch.manual_seed(0)
    g = tiny_g()
    assert isinstance(g, TransferableGenerator) and g.num_classes == 0 and g.z_dim == 8
    seg = torch.zeros(2, 0, 16, 16)
    img, feats = g(seg, torch.randn(2, 8), return_features=True)
    assert img.shape == (2, 3, 16, 16)
    assert tuple(feats) == g.feature_levels() == ('conv1', 'convs.0', 'convs.1', 'convs.2',
                                                  'convs.3')
    assert [f.shape[-1] for f in feats.values()] == [4, 8, 8, 16, 16]
    assert g(seg).shape == (2, 3, 16, 16)  # z drawn from seg's batch size
    img.mean().backward()
    no_grad = [n for n, p in g.named_parameters() if p.grad is None]
    assert no_grad == []
    with pytest.raises(ValueError, match='unconditional'):
        StyleGAN2Generator(16, num_classes=12)


def test_latents_mixing_truncation_and_noise():
    torch.manual_seed(0)
    g = tiny_g(noise_mode='const').eval()
    seg = torch.zeros(2, 0, 16, 16)
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    same = g(seg, z1.unsqueeze(1).expand(-1, g.n_latent, -1))
    assert torch.allclose(g(seg, z1), same, atol=1e-6)  # per-layer z == one z everywhere
    mixed = mix_latents(z1, z2, g.n_latent, crossover=2)
    assert mixed.shape == (2, g.n_latent, 8)
    assert torch.equal(mixed[:, :2], z1[:, None].expand(-1, 2, -1))
    assert torch.equal(mixed[:, 2:], z2[:, None].expand(-1, g.n_latent - 2, -1))
    w_avg = g.mean_latent(256)
    a = g(seg, z1, truncation=0.0, truncation_latent=w_avg)
    b = g(seg, z2, truncation=0.0, truncation_latent=w_avg)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a[0], a[1], atol=1e-6)
    with pytest.raises(ValueError, match='truncation_latent'):
        g(seg, z1, truncation=0.5)
    img, w = g(seg, z1, return_latents=True)
    assert w.shape == (2, g.n_latent, 8)
    assert torch.allclose(g(seg, w, input_is_latent=True), img, atol=1e-6)
    noise = g.draw_noise(2, generator=torch.Generator().manual_seed(1))
    assert [n.shape[-1] for n in noise] == [4, 8, 8, 16, 16]
    random = tiny_g(noise_mode='random')
    random.load_state_dict(g.state_dict())
    for layer in (random.conv1, *random.convs):  # make the noise matter
        layer.noise.weight.data.fill_(1.0)
    assert not torch.allclose(random(seg, z1), random(seg, z1))
    assert torch.equal(random(seg, z1, noise=noise), random(seg, z1, noise=noise))


def test_scale_shift_sites_for_bsa_start_as_identity():
    torch.manual_seed(0)
    plain = tiny_g(noise_mode='const')
    sites = tiny_g(noise_mode='const', scale_shift=True)
    assert plain.scale_shift() == {}
    assert list(sites.scale_shift()) == [f'{n}.scale_shift' for n in plain.feature_levels()]
    assert set(sites.adapter_keys()) == set(sites.state_dict()) - set(plain.state_dict())
    sites.load_state_dict(plain.state_dict(), strict=False)
    z = torch.randn(2, 8)
    seg = torch.zeros(2, 0, 16, 16)
    assert torch.allclose(sites(seg, z), plain(seg, z), atol=1e-6)


def test_conv_layer_without_bias_has_none():
    from catgen.models.discriminators.stylegan2_discriminator import ConvLayer
    layer = ConvLayer(3, 4, 3, bias=False)
    assert [n for n, _ in layer.named_parameters()] == ['0.weight']


def test_truncation_above_one_is_refused():
    g = tiny_g()
    with pytest.raises(ValueError, match='psi must be <= 1'):
        g(None, torch.randn(1, 8), truncation=1.5, truncation_latent=torch.zeros(1, 8))


def test_minibatch_stddev_by_hand():
    x = torch.randn(8, 3, 2, 2)
    out = minibatch_stddev(x, group_size=4)
    assert out.shape == (8, 4, 2, 2)
    # groups: sample i with i % 2 == j form group j (view(G, -1, ...))
    for j in range(2):
        members = x[j::2]
        expected = torch.sqrt(members.var(0, unbiased=False) + 1e-8).mean()
        assert torch.allclose(out[j::2, 3], expected.expand(4, 2, 2), atol=1e-6)
    with pytest.raises(ValueError, match='divisible'):
        minibatch_stddev(torch.randn(6, 3, 2, 2))


def test_discriminator_forward_and_protocol():
    torch.manual_seed(0)
    d = tiny_d()
    assert isinstance(d, TransferableDiscriminator)
    img = torch.randn(4, 3, 16, 16, requires_grad=True)
    out, feats = d(img, torch.zeros(4, 0, 16, 16), return_features=True)
    assert out.shape == (4, 1)
    assert tuple(feats) == d.feature_levels() == ('convs.0', 'convs.1', 'convs.2', 'final_conv')
    assert [f.shape[-1] for f in feats.values()] == [16, 8, 4, 4]
    levels = d.input_levels()
    assert levels[0] == ['convs.0'] and levels[-1] == ['final_linear']
    for level in levels:
        for name in level:
            assert any(True for _ in d.get_submodule(name).parameters())
    assert torch.allclose(d.log_likelihood(out, None), F.logsigmoid(out).mean())
    with pytest.raises(ValueError, match='class head'):
        d.log_likelihood(out, None, kind='label')
    out.sum().backward()
    assert img.grad is not None and all(p.grad is not None for p in d.parameters())
