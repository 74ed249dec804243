"""BSA: only the scales/shifts after each norm and the per-image latents train."""
import os
import sys

import warnings

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import MessageHub

import catgen.transfer.bsa as bsa_module
from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.models.losses.vgg_perceptual_loss import VGGPerceptualLoss, build_vgg19_features
from catgen.registry import MODELS
from catgen.transfer.bsa import (DEFAULT_PERCEPTUAL, BSA,  # noqa: F401 (registers BSA)
                                 chamfer_to_normal, scale_shift_regulariser)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402
from tiny_oasis import batch as tiny_batch  # noqa: E402


def source_checkpoint(path, n, seed=1):
    """A tiny source synthesizer saved in catgen's checkpoint format."""
    return save_source(path, n, seed)


def batch(n, b=3):
    return tiny_batch(n, b)


def bsa_cfg(n, transfer):
    """The tiny synthesizer with BSA's sites declared (``norm_affine=True``), as BSA configs."""
    cfg = synth_cfg(n, transfer)
    cfg['generator'] = dict(cfg['generator'], norm_affine=True)
    return cfg


def build(n, transfer, lr=1e-2):
    """The tiny BSA synthesizer and its optimizers (``lr``: the optimizers' config lr). The
    perceptual loss is off unless ``transfer`` names one (no VGG weights in tests)."""
    torch.manual_seed(0)
    model = MODELS.build(bsa_cfg(n, dict(dict(perceptual=None), **transfer)))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=lr)),
        discriminator=dict(optimizer=dict(type='Adam', lr=lr))))(model)
    return model, optim


def inputs_of(model, n, b=3):
    """The data preprocessor's inputs of ``batch(n, b)`` with ``sample_idx`` as train_step sets
    it."""
    inputs = model.data_preprocessor(batch(n, b), True)['inputs']
    inputs['sample_idx'] = torch.arange(b)
    return inputs


def steps(model, optim, n, k=2):
    logs = None
    for i in range(k):
        MessageHub.get_current_instance().update_info('iter', i)
        logs = model.train_step(batch(n), optim)
    return logs


def is_scale_shift(name):
    return name.endswith(('param_free_norm.weight', 'param_free_norm.bias'))


@pytest.fixture(scope='module')
def ckpt5(tmp_path_factory):
    return source_checkpoint(tmp_path_factory.mktemp('bsa') / 'src5.pth', 5)


def test_bsa_changes_only_scales_shifts_and_latents(ckpt5):
    # same label space: every generator weight is copied from the source
    model, optim = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 reinit_class_layers=False))
    gen = model.generator
    before = {n: p.detach().clone() for n, p in gen.named_parameters()}
    assert sum(is_scale_shift(n) for n in before) == 2 * 6  # 2 blocks x 3 SPADEs
    for n, p in gen.named_parameters():  # scale 1, shift 0 at the start
        if n.endswith('param_free_norm.weight'):
            assert torch.equal(p, torch.ones_like(p))
        elif n.endswith('param_free_norm.bias'):
            assert torch.equal(p, torch.zeros_like(p))
    latents0 = model.transfer.latents.detach().clone()
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    logs = steps(model, optim, 5)
    assert {'loss_bsa_l1', 'loss_bsa_affine_reg', 'loss_bsa_latent_reg'} <= set(logs)
    # no adversarial term by default: no loss_g_adv, and the discriminator is not updated
    assert 'loss_g_adv' not in logs and 'loss_d_real' not in logs
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    assert all(torch.isfinite(v) for v in logs.values())
    for n, p in gen.named_parameters():
        if is_scale_shift(n):
            assert not torch.equal(p, before[n]), n
        else:
            assert torch.equal(p, before[n]), f'{n} moved'
    latents = model.transfer.latents.detach()
    assert not torch.equal(latents[:3], latents0[:3])  # the batch's images (sample_idx 0..2)
    assert torch.equal(latents[3], latents0[3])  # an image never seen keeps its latent


def test_bsa_keeps_source_names_and_reloads(ckpt5):
    model, _ = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4))
    source = torch.load(ckpt5, weights_only=True)['state_dict']
    own = model.state_dict()
    src_g = {k for k in source if k.startswith('generator.')}
    own_g = {k for k in own if k.startswith('generator.')}
    assert src_g <= own_g and all(is_scale_shift(k) for k in own_g - src_g)
    assert 'transfer.latents' in own
    again, _ = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4))
    again.load_state_dict(own, strict=True)


def test_bsa_with_another_class_count_trains_the_fresh_layers_only(tmp_path, ckpt5):
    model, optim = build(4, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4))
    fresh = model.transfer.fresh_param_names(model)
    assert 'fc.weight' in fresh and 'body.0.norm_0.mlp_shared.0.weight' in fresh
    assert all('mlp_shared.0.' in k or k.startswith('fc.') for k in fresh)
    before = {n: p.detach().clone() for n, p in model.generator.named_parameters()}
    steps(model, optim, 4)
    for n, p in model.generator.named_parameters():
        if is_scale_shift(n) or n in fresh:
            assert not torch.equal(p, before[n]), n
        else:
            assert torch.equal(p, before[n]), f'{n} moved'


def test_bsa_errors_and_options(ckpt5):
    model, optim = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=2))
    with pytest.raises(ValueError, match='num_latents'):
        model.train_step(batch(5), optim)  # sample_idx 2 >= 2 latents
    with pytest.raises(FileNotFoundError, match='nonexistent.pth'):  # required: an error
        build(5, dict(type='BSA', source_checkpoint=ckpt5, require_perceptual=True,
                      perceptual=dict(type='VGGPerceptualLoss', weights_path='/nonexistent.pth')))
    model, optim = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 adversarial=True))
    assert float(steps(model, optim, 5, k=1)['loss_g_adv'].detach()) > 0
    with pytest.raises(ValueError, match='norm_affine=True'):  # no sites declared
        MODELS.build(synth_cfg(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                       perceptual=None)))


def test_chamfer_to_normal_is_small_for_normal_samples_and_large_far_away():
    torch.manual_seed(0)
    near = chamfer_to_normal(torch.randn(64, 4))
    far = chamfer_to_normal(torch.randn(64, 4) + 10)
    assert 0 <= near < far


def test_bsa_on_spade_has_no_latents_and_drops_feature_matching(tmp_path):
    def spade_cfg(transfer=None):
        return dict(type='SPADESynthesizer', ema_momentum=None,
                    data_preprocessor=dict(type='SISDataPreprocessor', num_classes=5),
                    generator=dict(type='SPADEGenerator', num_classes=5, base_channels=2,
                                   crop_size=SIZE, norm_affine=True),
                    discriminator=dict(type='MultiScalePatchGANDiscriminator', num_classes=5,
                                       base_channels=2, num_scales=1, num_layers=2),
                    transfer=transfer)
    torch.manual_seed(1)
    path = tmp_path / 'spade.pth'
    torch.save({'meta': {}, 'state_dict': MODELS.build(spade_cfg()).state_dict()}, path)
    torch.manual_seed(0)
    model = MODELS.build(spade_cfg(dict(type='BSA', source_checkpoint=str(path),
                                        reinit_class_layers=False, perceptual=None)))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-2)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-2))))(model)
    assert model.transfer.latents is None  # SPADE without VAE takes no noise
    before = {n: p.detach().clone() for n, p in model.generator.named_parameters()}
    logs = model.train_step(batch(5), optim)
    assert 'loss_g_adv' not in logs and 'loss_g_fm' not in logs
    assert 'loss_bsa_latent_reg' not in logs
    moved = {n for n, p in model.generator.named_parameters() if not torch.equal(p, before[n])}
    assert moved and all(is_scale_shift(n) for n in moved), moved


# ---------------------------------------------------------------- BSA as published

def test_param_groups_adapters_at_0_03_fresh_layers_at_the_optimizer_lr(ckpt5):
    # another class count: the label-reading layers restart and train (train_fresh_layers)
    model, optim = build(4, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4), lr=1e-4)
    groups = optim['generator'].optimizer.param_groups
    assert [g['lr'] for g in groups] == [0.03, 1e-4]
    ids = [{id(p) for p in g['params']} for g in groups]
    adapters = {id(p) for pair in model.generator.scale_shift().values() for p in pair}
    adapters.add(id(model.transfer.latents))
    named = dict(model.generator.named_parameters())
    fresh = {id(named[n]) for n in model.transfer.fresh_param_names(model)}
    assert fresh and ids == [adapters, fresh]
    # adapter_lr=None: everything at the optimizer's lr
    model, optim = build(4, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 adapter_lr=None), lr=1e-4)
    assert [g['lr'] for g in optim['generator'].optimizer.param_groups] == [1e-4]


def test_the_optimizer_state_of_two_groups_reloads(ckpt5):
    model, optim = build(4, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4), lr=1e-4)
    steps(model, optim, 4, k=1)
    state = optim.state_dict()
    again, optim2 = build(4, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4), lr=1e-4)
    optim2.load_state_dict(state)
    assert [g['lr'] for g in optim2['generator'].optimizer.param_groups] == [0.03, 1e-4]


def test_scale_shift_regulariser_is_summed_over_layers():
    pairs = [(torch.tensor([2.0, 1.0]), torch.tensor([0.0, 1.0])),
             (torch.tensor([1.0, 1.0, 1.0, 3.0]), torch.zeros(4))]
    # layer 1: mean(1, 0) + mean(0, 1) = 1; layer 2: mean(0, 0, 0, 4) + 0 = 1
    assert scale_shift_regulariser(pairs).item() == pytest.approx(2.0)
    # not one mean pooled over all entries: (1 + 4) / 6 + 1 / 6 = 1
    with pytest.raises(ValueError, match='at least one'):
        scale_shift_regulariser([])


def test_affine_regulariser_loss_equals_a_hand_computation(ckpt5):
    model, _ = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4))
    pairs = list(model.generator.scale_shift().values())
    assert len({s.numel() for s, _ in pairs}) > 1  # layers of different widths
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for s, b in pairs:
            s.copy_(1 + torch.randn(s.shape, generator=g))
            b.copy_(torch.randn(b.shape, generator=g))
    expected = sum(float(((s.detach() - 1) ** 2).mean()) + float((b.detach() ** 2).mean())
                   for s, b in pairs)
    inputs = inputs_of(model, 5)
    fake, _, _ = model.generate_for_training(inputs)
    losses = model.transfer.generator_losses(model, inputs, fake)
    assert losses['loss_bsa_affine_reg'].item() == pytest.approx(0.02 * expected, rel=1e-5)


def test_latent_jitter_in_training_only(ckpt5):
    model, optim = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 latent_init='normal'))
    seen = []
    model.generator.register_forward_pre_hook(lambda m, args: seen.append(args[1].detach()))
    latents0 = model.transfer.latents.detach().clone()
    steps(model, optim, 5, k=1)  # one generator forward (no adversarial term)
    assert len(seen) == 1
    diff = seen[0] - latents0[:3]
    assert 0.005 < diff.std().item() < 0.015 and diff.abs().max().item() < 0.1
    # many draws: std 0.01 around the latent, zero mean
    inputs = inputs_of(model, 5)
    model.train()
    torch.manual_seed(0)
    latents = model.transfer.latents.detach()[:3]
    draws = torch.stack([model.transfer.generator_noise(model, inputs).detach() - latents
                         for _ in range(200)])
    assert draws.std().item() == pytest.approx(0.01, rel=0.07)
    assert abs(draws.mean().item()) < 1e-3
    # eval: the latents themselves
    model.eval()
    assert torch.equal(model.transfer.generator_noise(model, inputs), model.transfer.latents[:3])
    model.train()
    no_jitter, _ = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 latent_jitter=0))
    assert torch.equal(no_jitter.transfer.generator_noise(no_jitter, inputs),
                       no_jitter.transfer.latents[:3])


def test_missing_vgg_weights_warn_once_naming_the_file(ckpt5, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no checkpoints/vgg19-dcbb9e9d.pth here
    monkeypatch.setattr(bsa_module, '_WARNED_MISSING', set())
    assert DEFAULT_PERCEPTUAL['weights_path'] == 'checkpoints/vgg19-dcbb9e9d.pth'
    assert DEFAULT_PERCEPTUAL['weight'] == 0.001 and set(DEFAULT_PERCEPTUAL['layer_weights']) == {1}
    transfer = dict(type='BSA', source_checkpoint=ckpt5, num_latents=4)  # perceptual: default
    with pytest.warns(UserWarning) as record:
        model = MODELS.build(bsa_cfg(5, transfer))
    msg = str(record[0].message)
    assert 'checkpoints/vgg19-dcbb9e9d.pth' in msg  # the file and where it goes
    assert 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth' in msg
    assert 'L1 reconstruction loss only' in msg  # what is lost
    assert model.transfer.perceptual is None
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-4)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-4))))(model)
    logs = steps(model, optim, 5, k=1)
    assert 'loss_bsa_l1' in logs and 'loss_bsa_perceptual' not in logs
    with warnings.catch_warnings(record=True) as again:  # once
        warnings.simplefilter('always')
        MODELS.build(bsa_cfg(5, transfer))
    assert not [w for w in again if 'VGG19' in str(w.message)]


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory):
    """A random VGG19 ``features.*`` state dict with torchvision's key names."""
    torch.manual_seed(0)
    state = {f'features.{k}': v for k, v in build_vgg19_features().state_dict().items()}
    path = tmp_path_factory.mktemp('vgg') / 'vgg19-dcbb9e9d.pth'
    torch.save(state, path)
    return str(path)


def test_perceptual_loss_used_with_local_vgg_weights(ckpt5, vgg_file):
    perceptual = dict(DEFAULT_PERCEPTUAL, weights_path=vgg_file)
    model, optim = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 perceptual=perceptual))
    loss = model.transfer.perceptual
    assert isinstance(loss, VGGPerceptualLoss) and loss.weight == 0.001
    assert not any(k.startswith('transfer.perceptual') for k in model.state_dict())
    inputs = inputs_of(model, 5)
    fake, _, _ = model.generate_for_training(inputs)
    value = model.transfer.generator_losses(model, inputs, fake)['loss_bsa_perceptual']
    with torch.no_grad():  # 0.001 per VGG layer, summed over the layers
        expected = sum(0.001 * F.l1_loss(a, b) for a, b in zip(
            loss.vgg_features(fake), loss.vgg_features(inputs['img'])))
    assert value.item() == pytest.approx(expected.item(), rel=1e-4) and value.item() > 0
    value.backward()  # the perceptual term reaches the scales
    scale = next(iter(model.generator.scale_shift().values()))[0]
    assert scale.grad is not None and scale.grad.abs().sum() > 0
    model.generator.zero_grad()
    logs = steps(model, optim, 5, k=1)
    assert torch.isfinite(logs['loss_bsa_perceptual']) and logs['loss_bsa_perceptual'] > 0


def test_bsa_config_is_the_published_setting():
    cfg = Config.fromfile('configs/bsa/oasis_synthscenes_100.py')
    transfer = cfg.model.transfer
    assert transfer.adapter_lr == 0.03 and transfer.latent_jitter == 0.01
    assert transfer.perceptual.weight == 0.001 and set(transfer.perceptual.layer_weights) == {1}
    assert transfer.perceptual.weights_path == 'checkpoints/vgg19-dcbb9e9d.pth'
    assert cfg.optim_wrapper.generator.optimizer.lr == 1e-4  # the fresh layers', as others'
