"""AtomicCheckpointHook: a failure (or kill) while a checkpoint is written leaves the previous
checkpoint and last_checkpoint intact and nothing truncated under a final name."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.fileio.backends import local_backend

from catgen.engine.hooks import AtomicCheckpointHook
from catgen.utils.checkpoint import safe_load
from catgen.utils.io import temporary_path
from catgen.utils.setup_env import guarded_default_scope

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_runner import ToyData, ToyModel  # noqa: E402


def _runner(work_dir, name, max_iters, hook=None, **runner_kwargs):
    from mmengine.runner import Runner
    checkpoint = dict(type='AtomicCheckpointHook', interval=1, by_epoch=False)
    checkpoint.update(hook or {})
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=ToyData(), batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=checkpoint, logger=dict(type='LoggerHook', interval=1)),
        default_scope='catgen', randomness=dict(seed=0), log_level='WARNING', **runner_kwargs)


def _failing_put(fail_on, written):
    """LocalBackend.put that writes half the bytes of a file whose name contains ``fail_on``,
    then fails, as a full disk or a kill during the write would."""
    original = local_backend.LocalBackend.put

    def put(self, obj, filepath):
        if fail_on in os.path.basename(str(filepath)):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            written.append(str(filepath))
            raise OSError(28, 'No space left on device (simulated)')
        return original(self, obj, filepath)

    return put


def _files(folder):
    """Checkpoints, last_checkpoint and temporary files (not the Runner's config dump)."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and (
        p.suffix == '.pth' or p.name.startswith('.') or p.name == 'last_checkpoint'))


def test_failed_save_leaves_previous_checkpoint_and_last_checkpoint(tmp_path, monkeypatch):
    """max_keep_ckpts=1: MMEngine's hook deletes iter_2.pth *before* writing iter_3.pth and
    writes iter_3.pth in place, so this failure would leave a truncated iter_3.pth, no
    iter_2.pth and last_checkpoint naming nothing readable."""
    written = []
    monkeypatch.setattr(local_backend.LocalBackend, 'put', _failing_put('iter_3', written))
    with guarded_default_scope(None):
        runner = _runner(tmp_path, 'fail', 4, dict(max_keep_ckpts=1))
        with pytest.raises(OSError, match='simulated'):
            runner.train()
    assert len(written) == 1 and os.path.basename(written[0]).startswith('.iter_3.tmp-')
    assert _files(tmp_path) == ['iter_2.pth', 'last_checkpoint']  # no iter_3.pth, no tmp
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_2.pth')
    ckpt = safe_load(tmp_path / 'iter_2.pth')
    assert ckpt['meta']['iter'] == 2 and 'lin.weight' in ckpt['state_dict']

    # and a resumed run carries on from it
    monkeypatch.undo()
    with guarded_default_scope(None):
        resumed = _runner(tmp_path, 'resumed', 4, dict(max_keep_ckpts=1), resume=True)
        resumed.train()
        assert resumed.message_hub.get_info('iter') == 3  # ran iterations 3 and 4 only
    assert _files(tmp_path) == ['iter_4.pth', 'last_checkpoint']
    assert safe_load(tmp_path / 'iter_4.pth')['meta']['iter'] == 4


def test_outdated_checkpoint_is_removed_after_the_new_one_is_complete(tmp_path):
    with guarded_default_scope(None):
        _runner(tmp_path, 'keep', 5, dict(max_keep_ckpts=2)).train()
    assert _files(tmp_path) == ['iter_4.pth', 'iter_5.pth', 'last_checkpoint']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_5.pth')
    assert safe_load(tmp_path / 'iter_5.pth')['message_hub']['runtime_info'][
        'keep_ckpt_ids'] == [4, 5]


def test_stale_temporary_checkpoints_are_removed_before_training(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    stale = temporary_path(tmp_path / 'iter_7.pth', pid=int(dead.stdout))
    alive = temporary_path(tmp_path / 'iter_8.pth', pid=os.getppid())  # a running process
    other = tmp_path / 'notes.txt'
    for path in (stale, alive, other):
        path.write_bytes(b'partial')
    with guarded_default_scope(None):
        _runner(tmp_path, 'stale', 1).train()
    assert not stale.exists() and alive.exists() and other.exists()


def test_best_and_published_checkpoints_are_atomic(tmp_path, monkeypatch):
    with guarded_default_scope(None):
        runner = _runner(tmp_path, 'best', 2, dict(save_best='acc', rule='greater',
                                                   published_keys=['meta', 'state_dict']))
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, AtomicCheckpointHook))
        written = []
        monkeypatch.setattr(local_backend.LocalBackend, 'put', _failing_put('best_', written))
        with pytest.raises(OSError, match='simulated'):
            hook._save_best_checkpoint(runner, {'acc': 0.5})
        assert written and not any(p.startswith('best_') or p.startswith('.')
                                   for p in _files(tmp_path))
        monkeypatch.undo()
        hook._save_best_checkpoint(runner, {'acc': 0.7})
    assert safe_load(tmp_path / 'best_acc_iter_2.pth')['meta']['iter'] == 2
    published = [p for p in _files(tmp_path) if p.startswith('iter_2-')]
    assert len(published) == 1
    assert set(safe_load(tmp_path / published[0])) == {'meta', 'state_dict'}
    assert not any(p.startswith('.') for p in _files(tmp_path))


def test_publish_interrupted_by_torch_save_leaves_nothing(tmp_path, monkeypatch):
    """torch.save raising after it wrote part of the file: no published file, no part."""
    with guarded_default_scope(None):
        runner = _runner(tmp_path, 'publish', 1)
        runner.train()
        hook = next(h for h in runner.hooks if isinstance(h, AtomicCheckpointHook))
        hook.published_keys = ['meta', 'state_dict']
        real_save = torch.save

        def failing_save(obj, f, *args, **kwargs):
            real_save(obj, f, *args, **kwargs)
            if not isinstance(f, (str, os.PathLike)):  # pickling a tensor saves to a buffer
                return
            with open(f, 'r+b') as fh:
                fh.truncate(os.path.getsize(f) // 2)
            raise RuntimeError('killed while saving (simulated)')

        monkeypatch.setattr(torch, 'save', failing_save)
        with pytest.raises(RuntimeError, match='simulated'):
            hook._publish_model(runner, str(tmp_path / 'iter_1.pth'))
    assert _files(tmp_path) == ['iter_1.pth', 'last_checkpoint']
    assert safe_load(tmp_path / 'iter_1.pth')['meta']['iter'] == 1
