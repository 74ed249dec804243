"""CDC: the distance consistency loss, the real source anchor, the anchor noises and the
patch-level discriminator."""
import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.affinity import AffinityMatrix
from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.models.synthesizers.oasis_synthesizer import OASISSynthesizer
from catgen.registry import MODELS
from catgen.transfer.cdc import (CDC, cdc_distance_loss,  # noqa: F401 (registers CDC)
                                 pairwise_similarity_logits)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import count_forwards, strategy_losses  # noqa: E402
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402,F401
from tiny_oasis import batch as tiny_batch  # noqa: E402

SOURCE = ['sky', 'grass', 'water', 'rock']  # 5 channels with don't care
TARGET = ['lawn', 'lake', 'stone']  # 4 channels
A = np.array([[0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.0, 0.0, 0.2, 0.8]])


def batch(n, b=4):
    return tiny_batch(n, b)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return save_source(tmp_path_factory.mktemp('cdc') / 'src.pth', n=5)


@pytest.fixture(scope='module')
def affinity(tmp_path_factory):
    stem = tmp_path_factory.mktemp('cdc_aff') / 'aff'
    AffinityMatrix(A, TARGET, SOURCE).save(stem)
    return dict(affinity_file=str(stem) + '.json', target_classes=TARGET, source_classes=SOURCE)


def optim_of(model):
    return GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)


def build(n, ckpt, synth_type=None, **kw):
    torch.manual_seed(0)
    cfg = synth_cfg(n, dict(type='CDC', source_checkpoint=ckpt, **kw))
    if synth_type is not None:
        cfg['type'] = synth_type
    model = MODELS.build(cfg)
    return model, optim_of(model)


def source_state(ckpt):
    state = torch.load(ckpt, weights_only=True)['state_dict']
    prefix = 'generator_ema.module.'
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def at_iteration(model, i):
    """What the TransferHook does before training iteration ``i``."""
    MessageHub.get_current_instance().update_info('iter', i)
    model.transfer.before_train_iter(None, model, i)


# ---------------------------------------------------------------------------- the loss
def test_similarity_distribution_and_kl_by_hand():
    feat = torch.tensor([[1., 0.], [0., 1.], [1., 1.]])
    logits = pairwise_similarity_logits(feat)
    r = 2 ** -0.5
    assert torch.allclose(logits, torch.tensor([[0., r], [0., r], [r, r]]))
    other = torch.tensor([[1., 0.], [1., 0.1], [0., 1.]])
    p, q = F.softmax(logits, 1), F.softmax(pairwise_similarity_logits(other), 1)
    expected = (p * (p / q).log()).sum() / 6  # mean over the B * (B - 1) = 6 entries
    assert float(cdc_distance_loss(feat, other)) == pytest.approx(float(expected), rel=1e-5)
    assert float(cdc_distance_loss(feat, feat)) == 0


def test_cdc_loss_is_zero_when_adapted_equals_source(ckpt):
    # same label space, class slices copied: the adapted generator IS the source anchor
    model, _ = build(5, ckpt, reinit_class_layers=False)
    assert model.transfer.anchor_kind == 'source'
    model.train()
    data = model.data_preprocessor(batch(5), True)
    for _ in range(3):  # whichever layer is drawn
        loss = strategy_losses(model, data['inputs'])['loss_cdc']
        assert float(loss.detach()) == 0


# ---------------------------------------------------------------------------- the anchor
def test_anchor_is_the_loaded_source_generator_when_label_spaces_match(ckpt):
    model, _ = build(5, ckpt)  # reinit_class_layers=True: G's class channels restart
    anchor, gen = model.transfer.source_generator, model.generator
    src = source_state(ckpt)
    assert model.transfer.anchor_kind == 'source'
    assert set(anchor.state_dict()) == set(src)
    for key, value in anchor.state_dict().items():
        assert torch.equal(value, src[key]), key
    slices = [s.module for s in gen.class_slices()]
    assert slices
    for name in slices:  # the class slices: the checkpoint's in the anchor, fresh in G
        key = name + ('.weight_orig' if name + '.weight_orig' in src else '.weight')
        assert torch.equal(anchor.state_dict()[key], src[key])
        assert not torch.equal(gen.state_dict()[key], src[key])
    assert not any(p.requires_grad for p in anchor.parameters())
    assert model.transfer.checkpoint_meta()['anchor'] == 'source'


def test_affinity_anchor_reads_a_transposed_target_map(ckpt, affinity):
    model, _ = build(4, ckpt, **affinity)
    assert model.transfer.anchor_kind == 'affinity'
    # the source generator by hand: built for 5 channels and loaded with the checkpoint
    src_gen = MODELS.build(synth_cfg(5)['generator'])
    src_gen.load_state_dict(source_state(ckpt))
    src_gen.eval()
    m = torch.zeros(4, 5)  # channel space: don't care -> don't care, A on the classes
    m[0, 0] = 1
    m[1:, 1:] = torch.as_tensor(A, dtype=torch.float32)
    y = F.one_hot(torch.randint(0, 4, (2, SIZE, SIZE)), 4).permute(0, 3, 1, 2).float()
    z = torch.randn(2, 4)
    y_s = torch.einsum('bthw,ts->bshw', y, m)
    anchor = model.transfer.source_generator.eval()
    with torch.no_grad():
        assert torch.allclose(anchor(y, z), src_gen(y_s, z), atol=1e-5)
    meta = model.transfer.checkpoint_meta()
    assert meta['anchor'] == 'affinity' and np.allclose(meta['affinity']['values'], A)


def test_reinit_copy_reproduces_the_old_behaviour(ckpt):
    model, _ = build(4, ckpt, anchor='reinit_copy')
    anchor = model.transfer.source_generator.state_dict()
    for key, value in model.generator.state_dict().items():  # the generator right after loading
        assert torch.equal(anchor[key], value), key
    model.train()
    data = model.data_preprocessor(batch(4), True)
    assert float(strategy_losses(model, data['inputs'])['loss_cdc'].detach()) == 0


def test_differing_label_spaces_without_affinity_name_the_option(ckpt):
    with pytest.raises(ValueError, match="affinity_file=.*anchor='reinit_copy'"):
        build(4, ckpt)
    with pytest.raises(ValueError, match="anchor='source'.*5 label channels.*4"):
        build(4, ckpt, anchor='source')
    with pytest.raises(ValueError, match='anchor must be one of'):
        build(4, ckpt, anchor='copy')


def test_anchor_is_saved_and_loaded_with_the_checkpoint(ckpt, affinity):
    model, _ = build(4, ckpt, **affinity)
    state = model.state_dict()
    assert any(k.startswith('transfer.source_generator.') for k in state)
    assert 'transfer.anchors' in state and any(k.startswith('transfer.patch_head.')
                                               for k in state)
    again, _ = build(4, ckpt, **affinity)  # rebuilt deterministically at set-up
    for key in ('transfer.anchors', 'transfer.source_generator.affinity.weight'):
        assert torch.equal(again.state_dict()[key], state[key])
    again.load_state_dict(state, strict=True)


# ---------------------------------------------------------------------------- level and noise
def test_level_is_never_the_first_or_the_last(ckpt):
    cdc = CDC(source_checkpoint=ckpt)
    levels = ['l0', 'l1', 'l2', 'l3', 'l4']
    drawn = {cdc.draw_level(levels) for _ in range(200)}
    assert drawn == {'l1', 'l2', 'l3'}
    assert {cdc.draw_level(['a', 'b']) for _ in range(50)} == {'a', 'b'}  # fallback: all
    assert CDC(source_checkpoint=ckpt, feature_layers=[-1]).candidate_levels(levels) == ['l4']


def test_every_fourth_iteration_draws_noise_near_an_anchor(ckpt):
    model, _ = build(5, ckpt)
    cdc = model.transfer
    assert cdc.anchors.shape == (10, 4)
    inputs = model.data_preprocessor(batch(5), True)['inputs']
    torch.manual_seed(3)
    for i in range(12):
        at_iteration(model, i)
        z = model.training_noise(inputs)
        dist = torch.cdist(z, cdc.anchors).min(dim=1).values
        if i % 4 == 0:  # ||0.1 * N(0, I_4)|| < 0.6 with probability 1 - 1e-6
            assert cdc.is_anchor_iteration() and not cdc.uses_patch_head()
            assert bool((dist < 0.6).all()), dist
        else:
            assert cdc.generator_noise(model, inputs) is None and cdc.uses_patch_head()


def test_generator_without_noise_skips_the_anchors(tmp_path):
    cfg = synth_cfg(5)
    cfg['generator']['z_dim'] = 0
    torch.manual_seed(1)
    path = tmp_path / 'src0.pth'
    torch.save({'meta': {}, 'state_dict': MODELS.build(cfg).state_dict()}, path)
    cfg = dict(cfg, transfer=dict(type='CDC', source_checkpoint=str(path)))
    model = MODELS.build(cfg)
    assert model.transfer.anchors is None and model.transfer.patch_head is not None
    at_iteration(model, 0)
    assert model.training_noise(model.data_preprocessor(batch(5), True)['inputs']) is None


# ---------------------------------------------------------------------------- patch-level D
def test_patch_head_is_trained_by_the_discriminator_step_only(ckpt):
    model, optim = build(5, ckpt)
    head = list(model.transfer.patch_head.parameters())
    d_params = {id(p) for g in optim['discriminator'].optimizer.param_groups for p in g['params']}
    g_params = {id(p) for g in optim['generator'].optimizer.param_groups for p in g['params']}
    assert all(id(p) in d_params and id(p) not in g_params for p in head)
    assert model.transfer.patch_level_name in model.discriminator.feature_levels()
    model.train()
    inputs = model.data_preprocessor(batch(5), True)['inputs']
    at_iteration(model, 1)  # a patch iteration
    strategy_losses(model, inputs, 'discriminator')['loss_cdc_patch_d'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head)
    model.zero_grad()
    losses = strategy_losses(model, inputs, 'generator')
    (losses['loss_cdc_patch_g'] + losses['loss_cdc']).backward()
    assert all(p.grad is None for p in head)  # frozen in the generator step
    at_iteration(model, 4)  # an anchor iteration: the ordinary loss only
    assert strategy_losses(model, inputs, 'discriminator') == {}
    assert 'loss_cdc_patch_g' not in strategy_losses(model, inputs, 'generator')


def test_cdc_runs_train_steps_then_the_loss_is_positive(ckpt, affinity):
    model, optim = build(4, ckpt, **affinity)
    src = {n: p.clone() for n, p in model.transfer.source_generator.named_parameters()}
    head = {n: p.clone() for n, p in model.transfer.patch_head.named_parameters()}
    logs = []
    for i in range(2):
        at_iteration(model, i)
        logs.append(model.train_step(batch(4), optim))
    assert 'loss_cdc' in logs[0] and 'loss_cdc_patch_d' not in logs[0]  # anchor iteration
    assert {'loss_cdc', 'loss_cdc_patch_d', 'loss_cdc_patch_g', 'loss_d_fake'} <= set(logs[1])
    assert all(torch.isfinite(v) for log in logs for v in log.values())
    source = model.transfer.source_generator
    assert all(torch.equal(p, src[n]) for n, p in source.named_parameters())
    assert not any(p.requires_grad for p in source.parameters())
    assert any(not torch.equal(p, head[n]) for n, p in model.transfer.patch_head.named_parameters())
    data = model.data_preprocessor(batch(4), True)
    loss = strategy_losses(model, data['inputs'])['loss_cdc']
    assert float(loss.detach()) > 0


class UnweightedOASIS(OASISSynthesizer):
    """A synthesizer that does not honour family_loss_weight."""

    honours_family_loss_weight = False


def test_replace_mode_drops_the_oasis_loss_on_patch_iterations(ckpt):
    MODELS.register_module(module=UnweightedOASIS, force=True)
    with pytest.raises(ValueError, match="patch_loss='add'"):
        build(5, ckpt, synth_type='UnweightedOASIS', patch_loss='replace')
    model, optim = build(5, ckpt, patch_loss='replace')  # OASISSynthesizer honours it
    at_iteration(model, 1)
    logs = model.train_step(batch(5), optim)
    assert 'loss_d_fake' not in logs and 'loss_g_adv' not in logs
    assert {'loss_cdc_patch_d', 'loss_cdc_patch_g', 'loss_cdc'} <= set(logs)
    at_iteration(model, 4)
    logs = model.train_step(batch(5), optim)
    assert {'loss_d_fake', 'loss_g_adv', 'loss_cdc'} <= set(logs)
    assert 'loss_cdc_patch_d' not in logs


def test_cdc_needs_two_samples(ckpt):
    model, optim = build(5, ckpt)
    with pytest.raises(ValueError, match='batch size >= 2'):
        model.train_step(batch(5, b=1), optim)


def test_one_adapted_generator_forward_per_update(ckpt):
    """CDC reads the features of the step's own generator forward: per train step the adapted
    generator runs once for D's update and once for G's, exactly as finetune-all."""
    counts = {}
    for kind in ('FinetuneAll', 'CDC'):
        torch.manual_seed(0)
        model = MODELS.build(synth_cfg(5, dict(type=kind, source_checkpoint=ckpt)))
        calls = count_forwards(model.generator)
        if kind == 'CDC':
            at_iteration(model, 1)  # a patch iteration: the head reads D, not G
        logs = model.train_step(batch(5), optim_of(model))
        counts[kind] = len(calls)
    assert 'loss_cdc' in logs
    assert counts == {'FinetuneAll': 2, 'CDC': 2}
