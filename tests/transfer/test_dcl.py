"""DCL: InfoNCE against a hand computation; generator and discriminator terms in training."""
import os
import sys
import math

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from catgen.affinity import AffinityMatrix
from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.transfer.dcl import DCL, info_nce, others  # noqa: F401 (registers DCL)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import count_forwards, strategy_losses  # noqa: E402
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402,F401
from tiny_oasis import batch as tiny_batch  # noqa: E402


SOURCE = ['sky', 'grass', 'water', 'rock']  # 5 channels with don't care
TARGET = ['lawn', 'lake', 'stone']  # 4 channels
A = np.array([[0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.0, 0.0, 0.2, 0.8]])


def batch(n, b=3):
    return tiny_batch(n, b)


@pytest.fixture(scope='module')
def affinity(tmp_path_factory):
    stem = tmp_path_factory.mktemp('dcl_aff') / 'aff'
    AffinityMatrix(A, TARGET, SOURCE).save(stem)
    return dict(affinity_file=str(stem) + '.json', target_classes=TARGET, source_classes=SOURCE)


def source_state(ckpt):
    state = torch.load(ckpt, weights_only=True)['state_dict']
    prefix = 'generator_ema.module.'
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def test_info_nce_matches_a_hand_computation():
    t = 0.5
    anchor = torch.tensor([[1., 0.], [0., 3.]])          # unit after normalisation
    positive = torch.tensor([[2., 0.], [1., 1.]])        # cos 1 ; cos 1/sqrt(2)
    negatives = torch.tensor([[0., 1.], [-1., 0.]])      # shared by both anchors
    # anchor 0: pos cos 1, negatives cos 0 and -1; anchor 1: pos 1/sqrt(2), negatives 1 and 0
    l0 = -math.log(math.exp(1 / t) / (math.exp(1 / t) + math.exp(0) + math.exp(-1 / t)))
    r = 2 ** -0.5
    l1 = -math.log(math.exp(r / t) / (math.exp(r / t) + math.exp(1 / t) + math.exp(0)))
    assert float(info_nce(anchor, positive, negatives, t)) == pytest.approx((l0 + l1) / 2,
                                                                             rel=1e-6)
    per_anchor = negatives.unsqueeze(0).expand(2, 2, 2)  # [N, K, D] form, same values
    assert float(info_nce(anchor, positive, per_anchor, t)) == pytest.approx((l0 + l1) / 2,
                                                                              rel=1e-6)
    # a perfect positive and orthogonal-or-opposite negatives give a small loss at T = 0.07
    assert float(info_nce(anchor[:1], positive[:1], negatives, 0.07)) < 1e-5


def test_others_lists_every_other_row():
    x = torch.arange(6.).view(3, 2)
    assert others(x).tolist() == [[[2, 3], [4, 5]], [[0, 1], [4, 5]], [[0, 1], [2, 3]]]


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return save_source(tmp_path_factory.mktemp('dcl') / 'src.pth', n=5)


def test_dcl_runs_two_train_steps(ckpt, affinity):
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt, **affinity)))
    assert model.transfer.anchor_kind == 'affinity'
    src = {n: p.clone() for n, p in model.transfer.source_generator.named_parameters()}
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    for i in range(2):
        MessageHub.get_current_instance().update_info('iter', i)
        logs = model.train_step(batch(4), optim)
    assert {'loss_dcl_g', 'loss_dcl_d'} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    source = model.transfer.source_generator  # frozen and unchanged
    assert all(torch.equal(p, src[n]) for n, p in source.named_parameters())
    # the discriminator term trains D: its gradient reaches the discriminator's bottleneck
    model.train()
    data = model.data_preprocessor(batch(4), True)
    loss = strategy_losses(model, data['inputs'], 'discriminator')['loss_dcl_d']
    loss.backward()
    assert model.discriminator.body_down[-1].conv2[1].weight_orig.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.generator.parameters())


def test_dcl_needs_two_samples(ckpt):
    model = MODELS.build(synth_cfg(5, dict(type='DCL', source_checkpoint=ckpt)))
    data = model.data_preprocessor(batch(5, b=1), True)
    with pytest.raises(ValueError, match='batch size >= 2'):
        strategy_losses(model, data['inputs'])


def test_one_adapted_generator_forward_per_update(ckpt):
    """DCL's generator term reads the step's own features, its discriminator term the images
    of D's update: per train step the adapted generator runs twice, as in finetune-all."""
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(5, dict(type='DCL', source_checkpoint=ckpt)))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    calls = count_forwards(model.generator)
    source_calls = count_forwards(model.transfer.source_generator)
    logs = model.train_step(batch(5), optim)
    assert {'loss_dcl_g', 'loss_dcl_d'} <= set(logs)
    assert len(calls) == 2 and len(source_calls) == 2  # one each per update


def test_anchor_is_the_loaded_source_generator_when_label_spaces_match(ckpt):
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(5, dict(type='DCL', source_checkpoint=ckpt)))
    assert model.transfer.anchor_kind == 'source'
    src = source_state(ckpt)
    anchor = model.transfer.source_generator.state_dict()
    assert all(torch.equal(v, src[k]) for k, v in anchor.items())
    for s in model.generator.class_slices():  # the checkpoint's, not the restarted ones
        key = s.module + ('.weight_orig' if s.module + '.weight_orig' in src else '.weight')
        assert torch.equal(anchor[key], src[key])
        assert not torch.equal(model.generator.state_dict()[key], src[key])


def test_affinity_anchor_and_reinit_copy_option(ckpt, affinity):
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt, **affinity)))
    seg = torch.nn.functional.one_hot(torch.randint(0, 4, (2, SIZE, SIZE)), 4)
    seg = seg.permute(0, 3, 1, 2).float()
    anchor = model.transfer.source_generator
    mapped = anchor.affinity(seg)  # A^T y_t: 5 source channels, each pixel a distribution
    assert mapped.shape == (2, 5, SIZE, SIZE) and torch.allclose(mapped.sum(1), torch.ones(1))
    assert np.allclose(model.transfer.checkpoint_meta()['affinity']['values'], A)
    model = MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt,
                                           anchor='reinit_copy')))
    anchor = model.transfer.source_generator.state_dict()
    assert all(torch.equal(anchor[k], v) for k, v in model.generator.state_dict().items())
    with pytest.raises(ValueError, match='affinity_file'):
        MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt)))
