"""CDC: cross-domain distance consistency between the source and the adapted generator."""
import os
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.transfer.cdc import (CDC, cdc_distance_loss,  # noqa: F401 (registers CDC)
                                 pairwise_similarity_logits)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import count_forwards, strategy_losses  # noqa: E402
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402,F401
from tiny_oasis import batch as tiny_batch  # noqa: E402


def batch(n, b=4):
    return tiny_batch(n, b)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return save_source(tmp_path_factory.mktemp('cdc') / 'src.pth', n=5)


def build(n, ckpt):
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(n, dict(type='CDC', source_checkpoint=ckpt)))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    return model, optim


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
    model, _ = build(4, ckpt)
    model.train()
    data = model.data_preprocessor(batch(4), True)
    for _ in range(3):  # whichever layer is drawn
        loss = strategy_losses(model, data['inputs'])['loss_cdc']
        assert float(loss.detach()) == 0


def test_cdc_runs_two_train_steps_then_the_loss_is_positive(ckpt):
    model, optim = build(4, ckpt)
    src = {n: p.clone() for n, p in model.transfer.source_generator.named_parameters()}
    for i in range(2):
        MessageHub.get_current_instance().update_info('iter', i)
        logs = model.train_step(batch(4), optim)
    assert 'loss_cdc' in logs and all(torch.isfinite(v) for v in logs.values())
    # the source copy stays frozen and unchanged, the adapted generator moved
    source = model.transfer.source_generator
    assert all(torch.equal(p, src[n]) for n, p in source.named_parameters())
    assert not any(p.requires_grad for p in source.parameters())
    data = model.data_preprocessor(batch(4), True)
    loss = strategy_losses(model, data['inputs'])['loss_cdc']
    assert float(loss.detach()) > 0


def test_cdc_needs_two_samples(ckpt):
    model, optim = build(4, ckpt)
    with pytest.raises(ValueError, match='batch size >= 2'):
        model.train_step(batch(4, b=1), optim)


def test_one_adapted_generator_forward_per_update(ckpt):
    """CDC reads the features of the step's own generator forward: per train step the adapted
    generator runs once for D's update and once for G's, exactly as finetune-all."""
    counts = {}
    for kind in ('FinetuneAll', 'CDC'):
        torch.manual_seed(0)
        model = MODELS.build(synth_cfg(4, dict(type=kind, source_checkpoint=ckpt)))
        optim = GANOptimWrapperConstructor(dict(
            generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
            discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
        calls = count_forwards(model.generator)
        logs = model.train_step(batch(4), optim)
        counts[kind] = len(calls)
    assert 'loss_cdc' in logs
    assert counts == {'FinetuneAll': 2, 'CDC': 2}
