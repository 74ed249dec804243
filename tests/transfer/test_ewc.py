"""EWC: Fisher-weighted penalty towards the source generator."""
import os
import sys

import pytest
import torch
from mmengine.logging import MessageHub

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.transfer.ewc import (EWC, discriminator_log_likelihood,  # noqa: F401 (registers)
                                 random_label_maps, source_shaped_copy)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402,F401
from tiny_oasis import batch as tiny_batch  # noqa: E402


def batch(n, b=2):
    return tiny_batch(n, b)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    """A tiny 5-class source synthesizer in catgen's checkpoint format."""
    return save_source(tmp_path_factory.mktemp('ewc') / 'src.pth', n=5)


def build(n, ckpt, **kw):
    torch.manual_seed(0)
    transfer = dict(type='EWC', source_checkpoint=ckpt, num_fisher_samples=2,
                    fisher_batch_size=2, **kw)
    return MODELS.build(synth_cfg(n, transfer))


def test_penalty_is_zero_at_source_and_grows_with_distance(ckpt):
    model = build(4, ckpt)  # another class count: fc and mlp_shared are not penalised
    ewc = model.transfer
    assert float(ewc.penalty(model.generator).detach()) == 0
    names = ewc.fisher.names
    assert 'fc.weight' not in names and 'body.0.conv_0.weight_orig' in names
    assert not any('mlp_shared.0.' in n for n in names)  # re-initialised: no penalty
    params = dict(model.generator.named_parameters())
    direction = {n: torch.randn_like(params[n]) for n in names}
    source = {n: params[n].detach().clone() for n in names}
    values = []
    for t in (0.0, 0.01, 0.02, 0.04):
        with torch.no_grad():
            for n in names:
                params[n].copy_(source[n] + t * direction[n])
        values.append(float(ewc.penalty(model.generator).detach()))
    assert values[0] == 0 and values[1] < values[2] < values[3]
    assert values[3] == pytest.approx(16 * values[1], rel=1e-4)  # quadratic in the distance
    losses = ewc.generator_losses(model, {}, None)
    assert float(losses["loss_ewc"].detach()) == pytest.approx(ewc.weight * values[3], rel=1e-5)


def test_fisher_is_non_negative_saved_and_seeded(ckpt):
    model = build(5, ckpt, fisher_normalization='none')
    fisher = dict(model.transfer.fisher.items())
    flat = torch.cat([f.reshape(-1) for f in fisher.values()])
    assert (flat >= 0).all() and flat.sum() > 0
    state = model.state_dict()
    assert 'transfer.fisher.body__0__conv_0__weight_orig' in state
    assert 'transfer.source_params.body__0__conv_0__weight_orig' in state
    again = dict(build(5, ckpt, fisher_normalization='none').transfer.fisher.items())
    assert all(torch.equal(fisher[n], again[n]) for n in fisher)
    normalised = torch.cat([f.reshape(-1) for _, f in build(5, ckpt).transfer.fisher.items()])
    assert normalised.mean() == pytest.approx(1.0, rel=1e-4)


def test_source_copy_and_log_likelihood(ckpt):
    model = build(4, ckpt)
    src_state = torch.load(ckpt, weights_only=True)['state_dict']
    d_state = {k[len('discriminator.'):]: v for k, v in src_state.items()
               if k.startswith('discriminator.')}
    disc = source_shaped_copy(model.discriminator, d_state)
    assert disc.layer_up_last.weight.shape[0] == 6  # the source's 5 classes + fake
    seg = random_label_maps(2, 5, (SIZE, SIZE), 4, torch.Generator().manual_seed(0))
    assert seg.shape == (2, 5, SIZE, SIZE) and seg[:, 0].sum() == 0
    img = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    for kind in ('real', 'label'):
        ll = discriminator_log_likelihood(disc, img, seg, kind)
        assert ll.dim() == 0 and float(ll) <= 0


def test_ewc_runs_two_train_steps(ckpt):
    model = build(4, ckpt)
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    for i in range(2):
        MessageHub.get_current_instance().update_info('iter', i)
        logs = model.train_step(batch(4), optim)
    assert float(logs['loss_ewc'].detach()) > 0 and all(torch.isfinite(v) for v in logs.values())
