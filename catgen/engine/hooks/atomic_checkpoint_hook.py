"""MMEngine's CheckpointHook, but a kill never leaves a truncated checkpoint or a dangling
``last_checkpoint``."""
import hashlib
import os.path as osp
import pickle

import torch
from mmengine.dist import is_main_process, master_only
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

from catgen.registry import HOOKS
from catgen.utils.io import atomic_write, remove_stale_temporaries, write_text_atomic

__all__ = ['AtomicCheckpointHook', 'save_checkpoint_atomic']


def save_checkpoint_atomic(runner, out_dir, filename, *args, fsync=True, **kwargs):
    """``runner.save_checkpoint(out_dir, filename, *args, **kwargs)``, written atomically.

    The Runner writes the checkpoint under a temporary name in ``out_dir``
    (:func:`catgen.utils.io.temporary_path`), which is renamed to ``filename`` once complete:
    a kill at any moment leaves the previous file at ``out_dir/filename`` (or none), never a
    truncated one. Only the main process writes (as ``Runner.save_checkpoint``); local folders
    only.

    Args:
        runner: the :class:`mmengine.runner.Runner`.
        out_dir: str, local folder of the checkpoint.
        filename: str, name of the checkpoint file in ``out_dir``.
        fsync: flush the file and the rename to disk before returning.
        *args, **kwargs: passed to ``runner.save_checkpoint`` (``save_optimizer``, ``meta``
            ...).

    Returns:
        str: the checkpoint's path.
    """
    path = osp.join(out_dir, filename)
    if not is_main_process():
        return path
    with atomic_write(path, fsync=fsync) as tmp:
        runner.save_checkpoint(str(tmp.parent), tmp.name, *args, **kwargs)
    return path


class _AtomicSaves:
    """A view of a Runner whose ``save_checkpoint`` writes atomically (everything else is the
    Runner's own), for the parts of ``CheckpointHook`` that call ``runner.save_checkpoint``."""

    def __init__(self, runner, fsync):
        object.__setattr__(self, '_runner', runner)
        object.__setattr__(self, '_fsync', fsync)

    def __getattr__(self, name):
        return getattr(self._runner, name)

    def __setattr__(self, name, value):
        setattr(self._runner, name, value)

    def save_checkpoint(self, out_dir, filename, *args, **kwargs):
        return save_checkpoint_atomic(self._runner, out_dir, filename, *args, fsync=self._fsync,
                                      **kwargs)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`mmengine.hooks.CheckpointHook` with crash-safe files; the same arguments.

    MMEngine 0.10.7 writes a checkpoint straight to its final name, then ``last_checkpoint``
    with a plain ``open(..., 'w')``, and, with ``max_keep_ckpts``, deletes the oldest kept
    checkpoint *before* writing the new one. A kill during the write leaves a truncated
    ``iter_N.pth`` (which a later ``--resume`` fails to read); with ``max_keep_ckpts=1`` a kill
    between the delete and the write leaves ``last_checkpoint`` naming a deleted file.

    Here, in a local ``out_dir``:

    * every checkpoint (periodic, last, best, published) is written under a temporary name and
      renamed when complete (:func:`save_checkpoint_atomic`), flushed to disk with ``fsync``;
    * ``last_checkpoint`` is written (atomically) only after the checkpoint it names is
      complete;
    * outdated checkpoints are deleted only after that, so a kill at any moment leaves
      ``last_checkpoint`` naming a complete checkpoint;
    * before training, temporary checkpoint files that killed runs left in ``out_dir`` (their
      process is gone) are deleted.

    Other back ends (``backend_args`` naming a remote store) behave as MMEngine's hook.

    Args:
        fsync: flush each checkpoint and rename to disk (survives a power loss, not only a
            killed process); a few milliseconds per checkpoint.
        **kwargs: :class:`~mmengine.hooks.CheckpointHook`'s arguments (``interval``,
            ``by_epoch``, ``max_keep_ckpts``, ``save_last``, ``save_best`` ...).
    """

    def __init__(self, *args, fsync=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fsync = fsync

    def _is_local(self):
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    def before_train(self, runner):
        super().before_train(runner)
        if self._is_local() and is_main_process():
            for path in remove_stale_temporaries(self.out_dir, suffixes=('.pth', )):
                runner.logger.warning(f'removed {path}: an incomplete checkpoint that a killed '
                                      f'run left behind')

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = None
        if self.max_keep_ckpts > 0:
            # _save_checkpoint and _save_best_checkpoint may both save this step
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated = self.keep_ckpt_ids.popleft()
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        save_checkpoint_atomic(
            runner, self.out_dir, ckpt_filename, fsync=self.fsync,
            file_client_args=self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        # only now that the checkpoint is complete does last_checkpoint name it
        write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt,
                          fsync=self.fsync)
        if outdated is not None and outdated != step:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by DeepSpeed are folders
                self.file_backend.rmtree(path)

    def _save_best_checkpoint(self, runner, metrics):
        if not self._is_local():
            return super()._save_best_checkpoint(runner, metrics)
        return super()._save_best_checkpoint(_AtomicSaves(runner, self.fsync), metrics)

    @master_only
    def _publish_model(self, runner, ckpt_path):
        if not self._is_local():
            return super()._publish_model(runner, ckpt_path)
        from catgen.utils.checkpoint import safe_load
        checkpoint = safe_load(ckpt_path, map_location='cpu')
        removed = [k for k in list(checkpoint) if k not in self.published_keys]
        for key in removed:
            checkpoint.pop(key)
        if removed:
            print_log(f'Key {removed} will be removed because they are not found in '
                      f'published_keys. If you want to keep them, please set `{removed}` in '
                      f'published_keys', logger='current')
        sha = hashlib.sha256(pickle.dumps(checkpoint)).hexdigest()
        final_path = osp.splitext(ckpt_path)[0] + f'-{sha[:8]}.pth'
        with atomic_write(final_path, fsync=self.fsync) as tmp:
            torch.save(checkpoint, tmp)
        print_log(f'The checkpoint ({ckpt_path}) is published to {final_path}.',
                  logger='current')
