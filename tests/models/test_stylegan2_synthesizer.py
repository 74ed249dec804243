"""StyleGAN2Synthesizer: the official losses and lazy regularisers, style mixing, fixed-latent
synthesis, and the image-only data preprocessor."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import init_default_scope

from catgen.models.data_preprocessors import ImageDataPreprocessor
from catgen.models.synthesizers.stylegan2_synthesizer import (StyleGAN2Synthesizer,
                                                              path_length_penalty, r1_penalty)
from catgen.structures import SISDataSample

G = dict(type='StyleGAN2Generator', size=16, style_dim=8, n_mlp=2, max_channels=8)
D = dict(type='StyleGAN2Discriminator', size=16, max_channels=8)


def build(**kw):
    init_default_scope('catgen')
    torch.manual_seed(0)
    synth = StyleGAN2Synthesizer(G, D, **kw)
    optim = OptimWrapperDict(**{
        part: OptimWrapper(torch.optim.Adam(getattr(synth, part).parameters(), 2e-3,
                                            betas=(0.0, 0.99)))
        for part in ('generator', 'discriminator')})
    return synth, optim


def batch(n=4):
    g = torch.Generator().manual_seed(1)
    return dict(inputs=dict(img=[torch.randint(0, 256, (3, 16, 16), generator=g,
                                               dtype=torch.uint8) for _ in range(n)]),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(n)])


def step(synth, optim, iteration):
    MessageHub.get_current_instance().update_info('iter', iteration)
    return synth.train_step(batch(), optim)


def test_image_preprocessor_gives_an_empty_label_map():
    dp = ImageDataPreprocessor()
    out = dp(batch(3))
    assert out['inputs']['img'].shape == (3, 3, 16, 16)
    assert out['inputs']['img'].min() >= -1 and out['inputs']['img'].max() <= 1
    assert out['inputs']['seg'].shape == (3, 0, 16, 16)
    with pytest.raises(ValueError, match='unconditional'):
        ImageDataPreprocessor(num_classes=12)
    noise_only = ImageDataPreprocessor(size=(16, 16))(
        dict(inputs={}, data_samples=[SISDataSample()] * 2))
    assert noise_only['inputs']['seg'].shape == (2, 0, 16, 16)


def test_r1_penalty_by_hand():
    a = torch.randn(3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * a).flatten(1).sum(1, keepdim=True) ** 2 / 2  # grad = logit' * a
    grads = (x * a).flatten(1).sum(1)[:, None, None, None] * a
    expected = grads.pow(2).flatten(1).sum(1).mean()
    assert torch.allclose(r1_penalty(logits, x), expected, atol=1e-5)


def test_path_length_penalty_by_hand():
    torch.manual_seed(0)
    w = torch.randn(4, 3, 5, requires_grad=True)
    m = torch.randn(5, 2 * 2 * 3)
    img = (w.sum(1) @ m).view(4, 3, 2, 2)  # linear: J^T y = (y.flatten() @ m^T) on every layer
    torch.manual_seed(7)
    penalty, mean, lengths = path_length_penalty(img, w, torch.tensor(0.5))
    torch.manual_seed(7)
    y = torch.randn_like(img) / 2
    jt_y = y.flatten(1) @ m.t()                                       # [4, 5], same per layer
    expected_lengths = jt_y.pow(2).sum(1).sqrt()
    assert torch.allclose(lengths, expected_lengths, atol=1e-5)
    expected_mean = 0.5 + 0.01 * (expected_lengths.mean() - 0.5)
    assert torch.allclose(mean, expected_mean)
    assert torch.allclose(penalty, (expected_lengths - expected_mean).pow(2).mean(), atol=1e-5)


def test_train_step_losses_and_lazy_regularisers():
    synth, optim = build(r1_interval=2, path_length_interval=3)
    d_before = [p.detach().clone() for p in synth.discriminator.parameters()]
    g_before = [p.detach().clone() for p in synth.generator.parameters()]
    logs = step(synth, optim, 0)
    assert {'loss_d_fake', 'loss_d_real', 'loss_d_r1', 'loss_g_adv', 'loss_g_path'} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    assert float(synth.mean_path_length) > 0
    assert all(not torch.equal(a, b) for a, b in zip(d_before, synth.discriminator.parameters()))
    changed = [not torch.equal(a, b) for a, b in zip(g_before, synth.generator.parameters())]
    assert all(changed)
    logs = step(synth, optim, 1)
    assert 'loss_d_r1' not in logs and 'loss_g_path' not in logs
    assert 'loss_d_r1' in step(synth, optim, 2) and 'loss_g_path' in step(synth, optim, 3)
    # EMA: decay 0.5 ** (32 / 10000) by default, i.e. close to G but not equal
    ema = synth.generator_ema.module
    assert abs(synth.ema_momentum - (1 - 0.5 ** (32 / 10000))) < 1e-12
    assert not torch.equal(ema.conv1.conv.weight, synth.generator.conv1.conv.weight)


def test_logistic_losses_by_hand():
    synth, _ = build(mixing=0.0)
    inputs = synth.training_inputs(batch())
    torch.manual_seed(3)
    losses = synth.discriminator_loss(inputs)
    torch.manual_seed(3)
    with torch.no_grad():
        fake = synth.generator(inputs['seg'], torch.randn(4, 8))
    lf = synth.discriminator(fake)
    lr = synth.discriminator(inputs['img'])
    assert torch.allclose(losses['loss_d_fake'], F.softplus(lf).mean(), atol=1e-6)
    assert torch.allclose(losses['loss_d_real'], F.softplus(-lr).mean(), atol=1e-6)


def test_style_mixing_probability():
    synth, _ = build(mixing=1.0)
    inputs = synth.training_inputs(batch())
    assert synth.sampled_training_noise(inputs).shape == (4, synth.generator.n_latent, 8)
    synth.mixing = 0.0
    assert synth.sampled_training_noise(inputs).shape == (4, 8)


def test_fixed_latent_synthesis_and_truncation():
    synth, _ = build()
    synth.eval()
    seg = torch.zeros(3, 0, 16, 16)
    a = synth.synthesize(seg, sample_ids=[4, 5, 6])
    b = synth.synthesize(seg[:1], sample_ids=[5])
    assert torch.allclose(a[1], b[0], atol=1e-5)  # the same image whatever the batch
    assert not torch.allclose(a[0], a[1])
    flat = synth.synthesize(seg, sample_ids=[4, 5, 6], truncation=0.0)
    for layer in (synth.generator_ema.module.conv1, *synth.generator_ema.module.convs):
        assert float(layer.noise.weight) == 0  # untrained: noise off, psi 0 = the mean image
    assert torch.allclose(flat[0], flat[2], atol=1e-5)
    out = synth(dict(seg=seg), [SISDataSample(metainfo=dict(sample_idx=i)) for i in range(3)],
                mode='predict')
    assert out[0].fake_img.shape == (3, 16, 16) and out[0].fake_img.dtype == torch.uint8


def test_family_weight_zero_drops_the_logistic_losses():
    synth, _ = build()

    class Replace:
        adversarial_weight = 1.0
        needs_generator_features = False

        def family_loss_weight(self, part):
            return 0.0

        def generator_noise(self, synth, inputs):
            return None

        def generator_losses(self, *a, **k):
            return dict(loss_extra_g=torch.zeros((), requires_grad=True))

        def discriminator_losses(self, *a, **k):
            return dict(loss_extra_d=torch.zeros((), requires_grad=True))

    synth.transfer = Replace()
    inputs = synth.training_inputs(batch())
    assert set(synth.discriminator_loss(inputs)) == {'loss_extra_d'}
    assert set(synth.generator_loss(inputs)) == {'loss_extra_g'}
