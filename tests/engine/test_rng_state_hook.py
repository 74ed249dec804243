"""RNGStateHook: RNG states travel in checkpoints (weights_only-safe); a resumed run draws the
same numbers as an uninterrupted one, also with validation right after each checkpoint."""
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from catgen.engine.hooks import RNGStateHook, get_rng_state, set_rng_state
from catgen.utils.checkpoint import safe_load
from catgen.utils.setup_env import guarded_default_scope


def _draw():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)],
            float(np.random.randn()), random.gauss(0, 1))


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # numpy caches the second Gaussian: has_gauss=1 is part of the state
    random.gauss(0, 1)  # so does random (gauss_next)
    state = get_rng_state()
    expected = _draw()
    torch.save({'rng_state': state}, tmp_path / 'ckpt.pth')
    _draw()  # move every generator on
    set_rng_state(safe_load(tmp_path / 'ckpt.pth')['rng_state'])  # torch.load(weights_only=True)
    assert _draw() == expected
    assert state['numpy']['keys'].shape == (624, ) and state['python']['state'].shape == (625, )


def test_set_rng_state_rejects_what_is_not_an_rng_state():
    with pytest.raises(ValueError, match=r"missing \['numpy', 'python'\]"):
        set_rng_state({'torch': torch.get_rng_state()})


# ------------------------------------------------------------------------------ through a Runner


class NoisyModel(BaseModel):
    """Its loss draws torch noise, as a GAN's generator input does."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.lin(inputs + 0.1 * torch.randn_like(inputs)).squeeze(-1)
        if mode == 'loss':
            return {'loss': ((out - labels) ** 2).mean()}
        return [dict(pred=o) for o in out]


class NoisyData(Dataset):
    """Items drawn with numpy and random, as random flips and crops are."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        jitter = np.random.rand(3).astype(np.float32) + random.random()
        return dict(inputs=torch.arange(3.0) * i + torch.from_numpy(jitter),
                    labels=torch.tensor(float(i % 3)))


class MeanPred(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results += [float(s['pred']) for s in data_samples]

    def compute_metrics(self, results):
        return {'mean_pred': float(np.mean(results))}


def _runner(work_dir, name, max_iters, rng_hook=True, **kwargs):
    from mmengine.runner import Runner
    torch.manual_seed(0)  # the model is built here, before the Runner seeds the generators
    return Runner(
        model=NoisyModel(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=NoisyData(), batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        val_dataloader=dict(dataset=NoisyData(), batch_size=4, num_workers=0,
                            sampler=dict(type='DefaultSampler', shuffle=False),
                            collate_fn=dict(type='default_collate')),
        val_evaluator=Evaluator([MeanPred()]), val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=2,
                                           by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[RNGStateHook()] if rng_hook else [],
        default_scope='catgen', randomness=dict(seed=0, deterministic=True),
        log_level='WARNING', **kwargs)


def _resumed_weights(tmp_path, rng_hook):
    """Train 4 iterations, then a new Runner resumes and trains to 6: its final weights."""
    work = tmp_path / f'resumed-{rng_hook}'
    _runner(work, f'first-{rng_hook}', 4, rng_hook).train()
    runner = _runner(work, f'resumed-{rng_hook}', 6, rng_hook, resume=True)
    runner.train()
    return runner.model.state_dict(), safe_load(work / 'iter_6.pth')


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    with guarded_default_scope(None):
        whole = _runner(tmp_path / 'whole', 'whole', 6)
        whole.train()
        reference = whole.model.state_dict()
        reference_ckpt = safe_load(tmp_path / 'whole' / 'iter_6.pth')
        weights, ckpt = _resumed_weights(tmp_path, rng_hook=True)
        for key, value in reference.items():
            assert torch.equal(weights[key], value), key
        # the generators themselves end in the same state, and so does Adam
        for key in ('torch', 'numpy', 'python'):
            a, b = reference_ckpt['rng_state'][key], ckpt['rng_state'][key]
            a, b = (a, b) if key == 'torch' else (a['keys' if key == 'numpy' else 'state'],
                                                   b['keys' if key == 'numpy' else 'state'])
            assert torch.equal(a, b), key
        assert ckpt['rng_state']['iter'] == 6
        for a, b in zip(reference_ckpt['optimizer']['state'].values(),
                        ckpt['optimizer']['state'].values()):
            assert all(torch.equal(a[k], b[k]) for k in a)

        # sensitivity: without the hook the same resume draws other numbers (flips, noise)
        weights, _ = _resumed_weights(tmp_path, rng_hook=False)
        assert any(not torch.equal(weights[k], v) for k, v in reference.items())


def test_load_from_a_checkpoint_restores_no_rng_state(tmp_path):
    """load_from starts a new run at iteration 0: its generators come from the seed."""
    with guarded_default_scope(None):
        _runner(tmp_path / 'a', 'a', 2).train()
        fresh = _runner(tmp_path / 'b', 'fresh', 2)
        fresh.train()
        loaded = _runner(tmp_path / 'c', 'loaded', 2, load_from=str(tmp_path / 'a' / 'iter_2.pth'))
        loaded.train()
        a = safe_load(tmp_path / 'a' / 'iter_2.pth')['rng_state']['torch']
        b = safe_load(tmp_path / 'b' / 'iter_2.pth')['rng_state']['torch']
        c = safe_load(tmp_path / 'c' / 'iter_2.pth')['rng_state']['torch']
        assert torch.equal(a, b) and torch.equal(b, c)  # c was not restored to a's iteration 2


def test_validation_outside_training_leaves_generators_alone(tmp_path):
    """runner.val() on its own: the generators move on as usual (nothing is put back)."""
    with guarded_default_scope(None):
        runner = _runner(tmp_path, 'val-only', 2)
        hook = next(h for h in runner.hooks if isinstance(h, RNGStateHook))
        torch.manual_seed(5)
        hook.before_val(runner)
        first = torch.rand(1)
        hook.after_val(runner)
        second = torch.rand(1)
        torch.manual_seed(5)
        assert torch.equal(torch.cat([first, second]), torch.rand(2))


def test_resuming_a_checkpoint_without_rng_state_warns(tmp_path, monkeypatch):
    with guarded_default_scope(None):
        _runner(tmp_path, 'without', 2, rng_hook=False).train()
        assert 'rng_state' not in safe_load(tmp_path / 'iter_2.pth')
        runner = _runner(tmp_path, 'with', 4, resume=True)
        warnings = []
        monkeypatch.setattr(runner.logger, 'warning', warnings.append)
        runner.train()
    assert any('holds no random generator states' in w for w in warnings), warnings
    assert safe_load(tmp_path / 'iter_4.pth')['rng_state']['iter'] == 4


def test_reseed_rank_keeps_rank0_exact_and_ranks_distinct():
    """Resuming with diff_rank_seed=True: rank 0 gets the saved states, other ranks get
    distinct (not rank 0's) but reproducible generators."""
    import torch

    from catgen.engine.hooks.rng_state_hook import _reseed_rank, get_rng_state
    torch.manual_seed(123)
    state = get_rng_state()
    draws = {}
    for rank in (0, 1, 2, 1):
        _reseed_rank(state, rank)
        draws.setdefault(rank, []).append(torch.rand(4))
    torch.manual_seed(123)
    assert torch.equal(draws[0][0], torch.rand(4))
    assert not torch.equal(draws[1][0], draws[0][0]) and not torch.equal(draws[1][0], draws[2][0])
    assert torch.equal(draws[1][0], draws[1][1])
