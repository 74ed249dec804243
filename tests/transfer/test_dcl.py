"""DCL: InfoNCE against a hand computation; generator and discriminator terms in training."""
import os
import sys
import math

import pytest
import torch
from mmengine.logging import MessageHub

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.transfer.dcl import DCL, info_nce, others  # noqa: F401 (registers DCL)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import count_forwards, strategy_losses  # noqa: E402
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402,F401
from tiny_oasis import batch as tiny_batch  # noqa: E402


def batch(n, b=3):
    return tiny_batch(n, b)


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


def test_dcl_runs_two_train_steps(ckpt):
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt)))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    for i in range(2):
        MessageHub.get_current_instance().update_info('iter', i)
        logs = model.train_step(batch(4), optim)
    assert {'loss_dcl_g', 'loss_dcl_d'} <= set(logs)
    assert all(torch.isfinite(v) for v in logs.values())
    # the discriminator term trains D: its gradient reaches the discriminator's bottleneck
    model.train()
    data = model.data_preprocessor(batch(4), True)
    loss = strategy_losses(model, data['inputs'], 'discriminator')['loss_dcl_d']
    loss.backward()
    assert model.discriminator.body_down[-1].conv2[1].weight_orig.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.generator.parameters())


def test_dcl_needs_two_samples(ckpt):
    model = MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt)))
    data = model.data_preprocessor(batch(4, b=1), True)
    with pytest.raises(ValueError, match='batch size >= 2'):
        strategy_losses(model, data['inputs'])


def test_one_adapted_generator_forward_per_update(ckpt):
    """DCL's generator term reads the step's own features, its discriminator term the images
    of D's update: per train step the adapted generator runs twice, as in finetune-all."""
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(4, dict(type='DCL', source_checkpoint=ckpt)))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    calls = count_forwards(model.generator)
    source_calls = count_forwards(model.transfer.source_generator)
    logs = model.train_step(batch(4), optim)
    assert {'loss_dcl_g', 'loss_dcl_d'} <= set(logs)
    assert len(calls) == 2 and len(source_calls) == 2  # one each per update
