"""OASIS and SPADE synthesizers: one train step on tiny models moves what it should."""
import pytest
import torch

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.structures import SISDataSample

N = 5


def batch(b=2, size=64):
    g = torch.Generator().manual_seed(0)
    label = torch.randint(1, N, (b, size, size), generator=g)
    img = torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8)
    return dict(inputs=dict(img=list(img), label=list(label)),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(b)])


def build(kind):
    pre = dict(type='SISDataPreprocessor', num_classes=N)
    if kind == 'oasis':
        cfg = dict(type='OASISSynthesizer', data_preprocessor=pre,
                   generator=dict(type='OASISGenerator', num_classes=N, z_dim=4, base_channels=4,
                                  channel_multipliers=(4, 2, 1), crop_size=64, spade_hidden=8),
                   discriminator=dict(type='OASISDiscriminator', num_classes=N, base_channels=2))
    else:
        cfg = dict(type='SPADESynthesizer', data_preprocessor=pre, ema_momentum=None,
                   generator=dict(type='SPADEGenerator', num_classes=N, base_channels=2,
                                  crop_size=64),
                   discriminator=dict(type='MultiScalePatchGANDiscriminator', num_classes=N,
                                      base_channels=4))
    model = MODELS.build(cfg)
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.0, 0.999))),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.0, 0.999)))))(model)
    return model, optim


@pytest.mark.parametrize('kind,keys', [
    ('oasis', {'loss_d_fake', 'loss_d_real', 'loss_d_labelmix', 'loss_g_adv'}),
    ('spade', {'loss_d_fake', 'loss_d_real', 'loss_g_adv', 'loss_g_fm'})])
def test_train_step_moves_generator_and_discriminator(kind, keys):
    torch.manual_seed(0)
    model, optim = build(kind)
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    d0 = [p.detach().clone() for p in model.discriminator.parameters()]
    logs = model.train_step(batch(), optim)
    assert set(logs) == keys and all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))


def test_oasis_labelmix_weight_zero_drops_the_term():
    model, optim = build('oasis')
    model.labelmix_weight = 0
    assert 'loss_d_labelmix' not in model.train_step(batch(), optim)


def test_oasis_predict_uses_ema_generator_and_fixed_noise():
    model, optim = build('oasis')
    model.train_step(batch(), optim)  # the first EMA update copies G (MMEngine)
    model.train_step(batch(), optim)
    model.eval()
    data = model.data_preprocessor(batch(), False)
    out = model(data['inputs'], data['data_samples'], mode='predict')
    again = model(data['inputs'], data['data_samples'], mode='predict')
    assert torch.equal(out[0].fake_img, again[0].fake_img)
    assert out[0].fake_img.shape == (3, 64, 64) and out[0].gt_img.dtype == torch.uint8
    # after the second step the EMA generator lags behind the trained one (momentum < 1)
    ema = dict(model.generator_ema.module.named_parameters())
    assert any(not torch.equal(p, ema[n]) for n, p in model.generator.named_parameters())


def test_oasis_pixel_noise_reaches_the_strategy_as_the_generators_full_noise():
    """With per-pixel noise, the step's z is the full 3D noise (the same tensor the generator
    used, so a strategy's source anchor sees the same input), and eval noise per sample id is
    reproducible, per-pixel part included."""
    model, optim = build('oasis')
    model.generator.pixel_noise_std = 1.0
    data = model.data_preprocessor(batch(), True)
    fake, z, _ = model.generate_for_training(data['inputs'], grad=False)
    assert z.shape == (2, 4, 64, 64)
    per_pixel = z - z.mean((2, 3), keepdim=True)
    assert 0.9 < per_pixel.std().item() < 1.1
    model.generator.eval()
    with torch.no_grad():
        assert torch.equal(model.generator(data['inputs']['seg'], z),
                           model.generator(data['inputs']['seg'], z))
    z1 = model.sample_noise(2, sample_ids=[3, 7])
    z2 = model.sample_noise(2, sample_ids=[3, 7])
    assert z1.shape == (2, 4, 64, 64) and torch.equal(z1, z2)
    assert not torch.equal(z1[0], z1[1])
    model.generator.pixel_noise_std = 0.0
    assert model.sample_noise(2, sample_ids=[3, 7]).shape == (2, 4)
