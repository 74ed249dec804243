"""Saves the random number generators' states in checkpoints and restores them on resume."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook

from catgen.registry import HOOKS

__all__ = ['RNGStateHook', 'get_rng_state', 'set_rng_state']

_FORMAT = 1


def get_rng_state():
    """The global generators' states as a dict of tensors and plain numbers.

    Keys: ``torch`` (``uint8 Tensor[N]``, the CPU generator), ``cuda`` (list of ``uint8
    Tensor``, one per visible GPU; empty when CUDA is not initialised), ``numpy`` (dict:
    ``name`` str, ``keys`` ``int64 Tensor[624]``, ``pos``, ``has_gauss`` int, ``cached_gaussian``
    float: the legacy ``numpy.random`` state) and ``python`` (dict: ``version`` int, ``state``
    ``int64 Tensor[625]``, ``gauss_next`` float or None: :mod:`random`'s state). Only types
    that ``torch.load(weights_only=True)`` reads without an allowlist.
    """
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return {
        'format': _FORMAT,
        'torch': torch.get_rng_state().clone(),
        'cuda': cuda,
        'numpy': {'name': str(name), 'keys': torch.from_numpy(keys.astype(np.int64)),
                  'pos': int(pos), 'has_gauss': int(has_gauss),
                  'cached_gaussian': float(cached_gaussian)},
        'python': {'version': int(version), 'state': torch.tensor(internal, dtype=torch.int64),
                   'gauss_next': None if gauss_next is None else float(gauss_next)},
    }


def set_rng_state(state):
    """Restore the global generators from a dict made by :func:`get_rng_state`.

    The CUDA states are restored when there are as many visible GPUs as saved states.

    Raises:
        ValueError: ``state`` is not such a dict (names the missing keys).
    """
    missing = [k for k in ('torch', 'numpy', 'python') if k not in (state or {})]
    if missing:
        raise ValueError(f'not an RNG state saved by catgen (missing {missing}); expected the '
                         f'dict of catgen.engine.hooks.rng_state_hook.get_rng_state().')
    torch.set_rng_state(state['torch'].to(torch.uint8).cpu())
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.to(torch.uint8).cpu() for s in cuda])
    npy = state['numpy']
    np.random.set_state((npy['name'], npy['keys'].cpu().numpy().astype(np.uint32),
                         int(npy['pos']), int(npy['has_gauss']), float(npy['cached_gaussian'])))
    py = state['python']
    random.setstate((int(py['version']), tuple(int(v) for v in py['state'].tolist()),
                     py['gauss_next']))


def _reseed_rank(state, rank):
    """Rank ``rank``'s generators, derived from rank 0's saved ``state``: distinct per rank and
    reproducible (a fixed function of the saved state and the rank)."""
    set_rng_state(state)
    if rank == 0:
        return
    base = int(torch.randint(0, 2 ** 62, (1,)).item())  # drawn from rank 0's restored state
    seed = (base * 1_000_003 + rank * 7_919) % (2 ** 63 - 1)
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    random.seed(seed)


class _RestoreBeforeFetch:
    """Wraps a train loop's dataloader iterator: after ``skip`` batches, restore ``state``
    right before the next batch is fetched, then hand the loop its own iterator back."""

    def __init__(self, loop, inner, skip, state, rank=0):
        self.loop, self.inner, self.skip, self.state = loop, inner, skip, state
        self.rank = rank

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip > 0:
            self.skip -= 1
            return next(self.inner)
        _reseed_rank(self.state, self.rank)
        self.loop.dataloader_iterator = self.inner
        return next(self.inner)

    def __getattr__(self, name):  # e.g. _dataloader, _epoch of _InfiniteDataloaderIterator
        if name == 'inner':  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Makes a resumed run draw the same random numbers as an uninterrupted one.

    * ``before_save_checkpoint``: store the global generators' states (torch CPU and CUDA,
      ``numpy.random``, :mod:`random`; see :func:`get_rng_state`) as ``checkpoint['rng_state']``,
      with the iteration they belong to. Tensors and plain numbers only, so the checkpoint still
      loads with ``torch.load(weights_only=True)``.
    * ``after_load_checkpoint`` + ``before_train_epoch``: when the run resumes from that
      iteration, restore the states right before the first *new* batch is fetched, i.e. after
      MMEngine's ``IterBasedTrainLoop`` has advanced the dataloader past the batches already
      trained (those draws, like anything run before training, do not count). A checkpoint
      loaded with ``load_from`` to start a new run (iteration 0) restores nothing.
    * ``before_val`` / ``after_val``: validation (a dataloader iterator draws a seed; transforms
      may draw) does not move the training generators: their states are put back before the
      next training batch. Without this, a validation right after a checkpoint would make the
      resumed run (which does not redo it) differ from the uninterrupted one.

    Limitation: in distributed training only rank 0 saves checkpoints, so only rank 0's states
    are stored. With ``randomness.diff_rank_seed=False`` every rank restores them (exact). With
    ``diff_rank_seed=True`` (catgen's default for distributed runs, so that ranks draw different
    noise) rank 0 restores them exactly and every other rank gets generators derived from them
    and its rank (distinct per rank, reproducible, but not the ones an uninterrupted run would
    have had); a warning says so. ``train_noise='per_sample'`` makes the noise independent of
    this.

    Args:
        restore: restore the stored states on resume (False only saves them).
        val_neutral: keep validation during training from moving the training generators.
    """

    priority = 'VERY_HIGH'

    def __init__(self, restore=True, val_neutral=True):
        self.restore = restore
        self.val_neutral = val_neutral
        self._loaded = None      # (iter, state) read from the resumed checkpoint
        self._train_state = None  # the training generators' states while validating
        self._training = False
        self._without_state = False

    # ------------------------------------------------------------------ saving
    def before_save_checkpoint(self, runner, checkpoint):
        # a checkpoint saved during validation (best checkpoint) gets the training states
        state = self._train_state if self._train_state is not None else get_rng_state()
        checkpoint['rng_state'] = dict(state, iter=int(checkpoint.get('meta', {}).get(
            'iter', runner.iter)), world_size=int(get_world_size()))

    # ------------------------------------------------------------------ resuming
    def after_load_checkpoint(self, runner, checkpoint):
        state = checkpoint.get('rng_state') if isinstance(checkpoint, dict) else None
        self._loaded = None if state is None else (state.get('iter'), state)
        self._without_state = state is None

    def before_train(self, runner):
        self._training = True

    def after_train(self, runner):
        self._training = False

    def before_train_epoch(self, runner):
        loaded, self._loaded = self._loaded, None
        if runner.iter > 0 and self._without_state:
            runner.logger.warning(
                'RNGStateHook: the resumed checkpoint holds no random generator states (saved '
                'without this hook): training continues, but with other random numbers (noise, '
                'flips) than an uninterrupted run would draw.')
        self._without_state = False
        if not self.restore or loaded is None:
            return
        saved_iter, state = loaded
        if runner.iter == 0 or saved_iter != runner.iter:
            return  # load_from (a new run from these weights), or another iteration
        rank = get_rank() if self._warn_if_ranks_differ(runner) else 0
        loop = runner.train_loop
        inner = getattr(loop, 'dataloader_iterator', None)
        if inner is None:  # epoch-based: the epoch's iterator is made after this hook
            _reseed_rank(state, rank)
        else:  # IterBasedTrainLoop advances its iterator runner.iter batches first
            loop.dataloader_iterator = _RestoreBeforeFetch(loop, inner, runner.iter, state, rank)
        runner.logger.info(f'RNGStateHook: training goes on with the random generator states '
                           f'saved at iteration {saved_iter}')

    def _warn_if_ranks_differ(self, runner):
        """True (and a warning) when ranks were seeded differently: they must stay different."""
        if get_world_size() > 1 and getattr(runner, '_randomness_cfg', {}).get('diff_rank_seed'):
            runner.logger.warning(
                'RNGStateHook: randomness.diff_rank_seed=True, but checkpoints hold rank 0\'s '
                'random states only: rank 0 continues exactly as an uninterrupted run would; the '
                'other ranks get generators derived from it and their rank (distinct, but not '
                'the uninterrupted run\'s). train_noise=\'per_sample\' avoids the difference.')
            return True
        return False

    # ------------------------------------------------------------------ validation
    def before_val(self, runner):
        if self.val_neutral and self._training:
            self._train_state = get_rng_state()

    def after_val(self, runner):
        state, self._train_state = self._train_state, None
        if state is None:
            return
        loop = runner.train_loop
        inner = getattr(loop, 'dataloader_iterator', None)
        if inner is None:
            set_rng_state(state)
        else:  # put back right before the next batch: after every hook's after_val
            if isinstance(inner, _RestoreBeforeFetch):
                inner = inner.inner
            loop.dataloader_iterator = _RestoreBeforeFetch(loop, inner, 0, state)
