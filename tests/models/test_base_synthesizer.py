import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.models.synthesizers.base_synthesizer import ConditionalGANSynthesizer, frozen


class ToyG(nn.Module):
    z_dim = 2

    def __init__(self, c=3):
        super().__init__()
        self.conv = nn.Conv2d(c + 2, 3, 1)

    def forward(self, seg, z=None):
        if z is None:
            z = torch.randn(seg.shape[0], self.z_dim)
        z = z[:, :, None, None].expand(-1, -1, *seg.shape[2:])
        return torch.tanh(self.conv(torch.cat([z, seg], 1)))


class ToySynth(ConditionalGANSynthesizer):
    nan_term = None

    def discriminator_loss(self, inputs):
        with torch.no_grad():
            fake = self.generator(inputs['seg'])
        losses = dict(loss_d=self.discriminator(fake).mean() - self.discriminator(inputs['img']).mean())
        if self.nan_term == 'loss_d':
            losses['loss_d'] = losses['loss_d'] * float('nan')
        return losses

    def generator_loss(self, inputs):
        return dict(loss_g=-self.discriminator(self.generator(inputs['seg'])).mean())


def make(ema_momentum=0.25, **kw):
    model = ToySynth(ToyG(), nn.Conv2d(3, 1, 1), data_preprocessor=dict(type='BaseDataPreprocessor'),
                     ema_momentum=ema_momentum, **kw)
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='SGD', lr=0.1)),
        discriminator=dict(optimizer=dict(type='SGD', lr=0.1))))(model)
    return model, optim


def batch():
    label = torch.randint(0, 3, (2, 8, 8))
    seg = torch.nn.functional.one_hot(label, 3).permute(0, 3, 1, 2).float()
    return dict(inputs=dict(img=torch.rand(2, 3, 8, 8) * 2 - 1, label=label, seg=seg),
                data_samples=None)


def test_train_step_updates_both_parts_and_ema_with_mmengine_momentum():
    torch.manual_seed(0)
    MessageHub.get_current_instance().update_info('iter', 0)
    model, optim = make(ema_momentum=0.25)
    g0 = model.generator.conv.weight.detach().clone()
    d0 = model.discriminator.weight.detach().clone()
    logs = model.train_step(batch(), optim)
    assert set(logs) == {'loss_d', 'loss_g'}
    g1 = model.generator.conv.weight.detach().clone()
    assert not torch.equal(g0, g1) and not torch.equal(d0, model.discriminator.weight)
    ema = model.generator_ema.module.conv.weight
    # momentum is 1 - decay: ema = (1 - m) * ema + m * new ... but mmengine copies on step 0
    assert torch.allclose(ema, g1)
    logs = model.train_step(batch(), optim)
    g2 = model.generator.conv.weight.detach().clone()
    assert torch.allclose(model.generator_ema.module.conv.weight, 0.75 * g1 + 0.25 * g2, atol=1e-6)
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_discriminator_gets_no_gradient_from_generator_step():
    model, optim = make()
    model.train_step(batch(), optim)
    # zero_grad ran after each update, and the G step never touched D's grads
    assert all(p.grad is None or not p.grad.any() for p in model.discriminator.parameters())


def test_frozen_restores_individual_flags():
    m = nn.Linear(2, 2)
    m.bias.requires_grad_(False)
    with frozen(m):
        assert not any(p.requires_grad for p in m.parameters())
    assert m.weight.requires_grad and not m.bias.requires_grad


def test_nonfinite_loss_raises_with_term_and_iteration():
    MessageHub.get_current_instance().update_info('iter', 41)
    model, optim = make()
    model.nan_term = 'loss_d'
    with pytest.raises(FloatingPointError, match=r'"loss_d".*iteration 41'):
        model.train_step(batch(), optim)


def test_nonfinite_skip_leaves_weights():
    model, optim = make(nonfinite='skip')
    model.nan_term = 'loss_d'
    d0 = model.discriminator.weight.detach().clone()
    model.train_step(batch(), optim)
    assert torch.equal(d0, model.discriminator.weight)


def test_predict_is_deterministic_per_sample_and_uint8():
    model, _ = make()
    model.eval()
    b = batch()
    out1 = model(b['inputs'], None, mode='predict')
    out2 = model(b['inputs'], None, mode='predict')
    assert out1[0].fake_img.dtype == torch.uint8 and out1[0].fake_img.shape == (3, 8, 8)
    assert torch.equal(out1[1].fake_img, out2[1].fake_img)
    assert out1[0].gt_label.shape == (8, 8)
    z = model.sample_noise(2, [0, 1], torch.device('cpu'))
    assert not torch.equal(z[0], z[1])


def test_bad_ema_momentum_explains_convention():
    with pytest.raises(ValueError, match='1 - decay'):
        make(ema_momentum=0.9999 + 1)
