"""EMANormStatsHook / refresh_ema_norm_stats: the EMA generator's batch-norm statistics are
recomputed in train mode (official OASIS, utils.update_EMA) without changing the training run."""
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from catgen.engine.hooks import EMANormStatsHook
from catgen.registry import DATASETS, MODELS


def _norm_buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items()
            if 'running_' in k or 'num_batches_tracked' in k}


@pytest.fixture
def tiny_synth_and_batches(tiny_oasis_cfg):
    torch.manual_seed(0)
    synth = MODELS.build(tiny_oasis_cfg.model)
    dataset = DATASETS.build(tiny_oasis_cfg.train_dataloader.dataset)
    batches = [pseudo_collate([dataset[i] for i in range(j, j + 4)]) for j in range(0, 16, 4)]
    with torch.no_grad():  # EMA weights away from G's, as after training
        for p in synth.generator_ema.module.parameters():
            p.mul_(1.5)
    return synth, batches


def test_refresh_matches_eval_to_train_mode_and_leaves_the_rest_alone(tiny_synth_and_batches):
    synth, batches = tiny_synth_and_batches
    ema = synth.generator_ema.module
    g_before = {k: v.clone() for k, v in synth.generator.state_dict().items()}
    seg = synth.data_preprocessor(batches[0], False)['inputs']['seg']
    z = torch.randn(seg.shape[0], ema.z_dim, generator=torch.Generator().manual_seed(1))

    def eval_train_gap():
        with torch.no_grad():
            ema.eval()
            a = ema(seg, z)
            ema.train()
            b = ema(seg, z)  # train mode updates the statistics: measure on a copy
        return (a - b).abs().mean().item()

    saved, full = _norm_buffers(ema), {k: v.clone() for k, v in ema.state_dict().items()}
    gap_before = eval_train_gap()
    ema.load_state_dict(full)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    ran = synth.refresh_ema_norm_stats(batches * 10, seed=0)
    assert ran == 40
    assert torch.equal(torch.get_rng_state(), states[0])  # forked: training RNG untouched
    assert (np.random.get_state()[1] == states[1]).all() and random.getstate() == states[2]
    after = _norm_buffers(ema)
    assert any(not torch.equal(saved[k], after[k]) for k in saved)
    assert all(torch.equal(v, synth.generator.state_dict()[k]) for k, v in g_before.items())
    gap_after = eval_train_gap()
    assert gap_after < 0.5 * gap_before, (gap_before, gap_after)
    ema.eval()
    # deterministic: the same batches and seed give the same statistics
    ema.load_state_dict(full)
    synth.refresh_ema_norm_stats(batches * 10, seed=0)
    assert all(torch.equal(after[k], v) for k, v in _norm_buffers(ema).items())


def test_nothing_to_refresh_without_ema(tiny_oasis_cfg):
    tiny_oasis_cfg.model.ema_momentum = None
    synth = MODELS.build(tiny_oasis_cfg.model)
    assert synth.refresh_ema_norm_stats([{}]) == 0
    with pytest.raises(ValueError, match='num_batches must be >= 0'):
        EMANormStatsHook(num_batches=-1)


def _train(cfg, work_dir, num_batches):
    from mmengine.runner import Runner
    cfg = cfg.copy()
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = 4
    cfg.train_cfg.val_interval = 10
    cfg.default_hooks.checkpoint.interval = 3
    cfg.default_hooks.ema_norm_stats.num_batches = num_batches
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, EMANormStatsHook))
    return runner.model, hook


def test_hook_refreshes_before_checkpoints_and_at_the_end_without_changing_training(
        tiny_oasis_cfg, tmp_path):
    plain, off = _train(tiny_oasis_cfg, tmp_path / 'off', 0)
    refreshed, on = _train(tiny_oasis_cfg, tmp_path / 'on', 2)
    assert off.refreshes == 0 and on.refreshes == 2  # after iteration 3 (checkpoint), 4 (last)
    # the training run is the same: G, D and the EMA weights agree exactly
    for part in ('generator', 'discriminator'):
        a, b = getattr(plain, part).state_dict(), getattr(refreshed, part).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), part
    ema_a = plain.generator_ema.module.state_dict()
    ema_b = refreshed.generator_ema.module.state_dict()
    weights = [k for k, _ in plain.generator_ema.module.named_parameters()]
    assert weights and all(torch.equal(ema_a[k], ema_b[k]) for k in weights)
    # only the EMA's buffers differ (statistics; spectral-norm vectors, whose power iteration
    # runs in train mode too), and the checkpoint holds the refreshed ones
    stats = [k for k in ema_a if 'running_mean' in k]
    assert any(not torch.equal(ema_a[k], ema_b[k]) for k in stats)
    from catgen.utils.checkpoint import safe_load
    saved = safe_load(tmp_path / 'on' / 'iter_4.pth')['state_dict']
    assert all(torch.equal(saved[f'generator_ema.module.{k}'], ema_b[k]) for k in stats)
