"""BSA: only the scales/shifts after each norm and the per-image latents train."""
import os
import sys

import pytest
import torch
from mmengine.logging import MessageHub

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.transfer.bsa import BSA, chamfer_to_normal  # noqa: F401 (registers BSA)

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
    torch.manual_seed(0)
    model = MODELS.build(bsa_cfg(n, transfer))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=lr)),
        discriminator=dict(optimizer=dict(type='Adam', lr=lr))))(model)
    return model, optim


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
    with pytest.raises(FileNotFoundError, match='VGG19'):
        build(5, dict(type='BSA', source_checkpoint=ckpt5,
                      perceptual=dict(type='VGGPerceptualLoss', weights_path='/nonexistent.pth')))
    model, optim = build(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4,
                                 adversarial=True))
    assert float(steps(model, optim, 5, k=1)['loss_g_adv'].detach()) > 0
    with pytest.raises(ValueError, match='norm_affine=True'):  # no sites declared
        MODELS.build(synth_cfg(5, dict(type='BSA', source_checkpoint=ckpt5, num_latents=4)))


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
                                        reinit_class_layers=False)))
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
