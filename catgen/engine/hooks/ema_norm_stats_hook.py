"""EMANormStatsHook: the EMA generator's batch-norm statistics, recomputed before it is used.

The official OASIS code refreshes the running statistics of its EMA generator (train-mode
forward passes without gradients over about 50 training batches, ``utils.update_EMA``) at every
iteration where it prints samples, computes FID or saves a checkpoint. This hook does the same
at every iteration after which a checkpoint is saved, a validation runs or a sample grid is
drawn, and at the last iteration, through
:meth:`~catgen.models.synthesizers.base_synthesizer.BaseSynthesizer.refresh_ema_norm_stats`.
Checkpoints therefore hold refreshed statistics, and tools/test.py and tools/synthesize.py use
them as saved. The training run itself is unchanged: the refresh reads the training data set
through a loader of its own and leaves every random state as it found it.
"""
import itertools
import random

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from torch.utils.data import DataLoader

from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import HOOKS

from .sample_grid_hook import SampleGridHook


@HOOKS.register_module()
class EMANormStatsHook(Hook):
    """Refresh the EMA generator's batch-norm statistics before it is evaluated, drawn or saved.

    Args:
        num_batches: training batches of train-mode forward passes per refresh (official
            OASIS: 50); 0 disables the hook (then the EMA keeps G's statistics).
        seed: seed of the noise of the refresh passes.
    """

    # before the checkpoint (VERY_LOW) and sample-grid (LOW) hooks, so both see fresh statistics
    priority = 'ABOVE_NORMAL'

    def __init__(self, num_batches=50, seed=0):
        if int(num_batches) < 0:
            raise ValueError(f'EMANormStatsHook num_batches must be >= 0, got {num_batches}')
        self.num_batches = int(num_batches)
        self.seed = seed
        self.intervals = []
        self.refreshes = 0

    def before_train(self, runner):
        """Collect the intervals at which the EMA generator is used: checkpoints, validation,
        sample grids."""
        self.intervals = []
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and hook.interval > 0:
                self.intervals.append(hook.interval)
            elif isinstance(hook, SampleGridHook) and hook.interval > 0:
                self.intervals.append(hook.interval)
        val_interval = getattr(runner.train_loop, 'val_interval', 0)
        if getattr(runner, '_val_loop', None) is not None and val_interval:
            self.intervals.append(val_interval)

    def _due(self, runner):
        done = runner.iter + 1
        return done >= runner.max_iters or any(done % n == 0 for n in self.intervals)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if self.num_batches and self._due(runner):
            self.refresh(runner)

    def refresh(self, runner):
        """Run the refresh on ``num_batches`` batches of the training data set, read by a
        loader of its own (the training loader's iterator and workers are not touched; the
        Python and numpy random states that the data transforms use are restored after)."""
        model = unwrap(runner.model)
        if getattr(model, 'generator_ema', None) is None:
            return 0
        loader = runner.train_dataloader
        rank, world = get_dist_info()
        shuffle = torch.Generator().manual_seed(self.seed)
        # one global batch (per-rank batch x processes) at a time, each rank its own slice:
        # W processes with batch B refresh exactly as one with batch W*B (synchronised BN)
        size = loader.batch_size
        refresh_loader = DataLoader(loader.dataset, batch_size=size * world, shuffle=True,
                                    generator=shuffle, collate_fn=lambda items: items,
                                    num_workers=0, drop_last=True)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            batches = (loader.collate_fn(items[rank * size:(rank + 1) * size])
                       for items in itertools.islice(refresh_loader, self.num_batches))
            count = model.refresh_ema_norm_stats(batches, seed=self.seed)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        self.refreshes += bool(count)
        return count
