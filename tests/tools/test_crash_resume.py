"""Crash safety end to end: a tiny OASIS trained with tools/train.py is killed with SIGKILL
mid-training, then again while it writes a checkpoint; `--resume` then finishes the run, and
its final weights, optimizer states and RNG states equal an uninterrupted run's bit for bit."""
import os
import os.path as osp
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import train as train_tool  # noqa: E402
from conftest import tiny_oasis_options  # noqa: E402

from catgen.utils.checkpoint import UnsafeCheckpointError, safe_load  # noqa: E402

CONFIG = osp.join(ROOT, 'configs/oasis/oasis_synthscenes-source.py')
MAX_ITERS = 6
TIMEOUT_S = 600  # generous: the machine may be shared

# Test-only hooks, imported by the killed runs (custom_imports). They draw no random numbers,
# so they do not change what the run computes.
PROBE = textwrap.dedent('''
    import os
    import time

    from mmengine.fileio.backends import local_backend
    from mmengine.hooks import Hook

    from catgen.registry import HOOKS


    def _hang(marker):
        with open(marker + '.tmp', 'w') as f:
            f.write(str(os.getpid()))
        os.replace(marker + '.tmp', marker)
        while True:  # until SIGKILL
            time.sleep(1)


    @HOOKS.register_module(force=True)
    class HangAfterIterHook(Hook):
        """After training iteration ``iteration`` (1-based, after its checkpoint if any),
        write ``marker`` and wait to be killed."""
        priority = 'LOWEST'

        def __init__(self, iteration, marker):
            self.iteration, self.marker = iteration, marker

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            if runner.iter + 1 == self.iteration:
                _hang(self.marker)


    @HOOKS.register_module(force=True)
    class HangInCheckpointWriteHook(Hook):
        """While the file whose name contains ``name`` is written, write half of its bytes,
        then ``marker``, and wait to be killed."""

        def __init__(self, name, marker):
            self.name, self.marker = name, marker

        def before_train(self, runner):
            put, name, marker = local_backend.LocalBackend.put, self.name, self.marker

            def hanging_put(backend, obj, filepath):
                if name in os.path.basename(str(filepath)):
                    with open(filepath, 'wb') as f:
                        f.write(obj[:len(obj) // 2])
                        f.flush()
                    _hang(marker)
                return put(backend, obj, filepath)

            local_backend.LocalBackend.put = hanging_put
''')


def write_config(path, data_root, work_dir, probe=None):
    """The tiny OASIS config (checkpoints every 2 iterations, each followed by a validation)
    as one file, with an optional probe hook."""
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(tiny_oasis_options(data_root, work_dir, max_iters=MAX_ITERS,
                                           checkpoint_interval=2))
    cfg.train_cfg.val_interval = 2  # validation right after each checkpoint
    if probe is not None:
        cfg.custom_imports = dict(imports=['catgen_crash_probe'], allow_failed_imports=False)
        cfg.custom_hooks = list(cfg.custom_hooks) + [probe]
    cfg.dump(str(path))
    return str(path)


def run_until_marker(config, work_dir, marker, resume, log):
    """Start tools/train.py in a subprocess, wait until it writes ``marker``, SIGKILL it."""
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([osp.dirname(config), os.environ.get('PYTHONPATH', '')]))
    cmd = [sys.executable, osp.join(ROOT, 'tools/train.py'), config, '--work-dir', str(work_dir)]
    if resume:
        cmd.append('--resume')
    with open(log, 'w') as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + TIMEOUT_S
        try:
            while not osp.exists(marker):
                if proc.poll() is not None:
                    pytest.fail(f'training exited ({proc.returncode}) before {marker}:\n'
                                + Path(log).read_text()[-4000:])
                if time.monotonic() > deadline:
                    pytest.fail(f'no {marker} after {TIMEOUT_S} s:\n'
                                + Path(log).read_text()[-4000:])
                time.sleep(0.05)
            assert int(Path(marker).read_text()) == proc.pid
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL


def assert_identical(a, b, where):
    """Same structure, tensors equal bit for bit (same dtype and shape), other leaves equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f'{where} differs'
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f'{where}: keys {set(a) ^ set(b)}'
        for key in a:
            assert_identical(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


def last_checkpoint(work_dir):
    return osp.basename((work_dir / 'last_checkpoint').read_text().strip())


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted_run(tiny_synthscenes, tmp_path):
    (tmp_path / 'catgen_crash_probe.py').write_text(PROBE)
    work = tmp_path / 'crashed'

    # 1. killed mid-training: iteration 3 done, its progress not checkpointed
    marker = str(tmp_path / 'hang_after_iter_3')
    config = write_config(tmp_path / 'kill_after_iter.py', tiny_synthscenes, work,
                          dict(type='HangAfterIterHook', iteration=3, marker=marker))
    run_until_marker(config, work, marker, resume=False, log=tmp_path / 'run1.log')
    assert last_checkpoint(work) == 'iter_2.pth'
    assert not (work / 'iter_4.pth').exists()
    assert safe_load(work / 'iter_2.pth')['meta']['iter'] == 2

    # 2. resumed, then killed halfway through writing iter_4.pth
    marker = str(tmp_path / 'hang_in_write')
    config = write_config(tmp_path / 'kill_in_write.py', tiny_synthscenes, work,
                          dict(type='HangInCheckpointWriteHook', name='iter_4', marker=marker))
    run_until_marker(config, work, marker, resume=True, log=tmp_path / 'run2.log')
    partial = [p for p in os.listdir(work) if p.startswith('.iter_4.tmp-')]
    assert len(partial) == 1, os.listdir(work)
    with pytest.raises((RuntimeError, UnsafeCheckpointError, EOFError)):
        safe_load(work / partial[0])  # truncated: never under the final name
    assert not (work / 'iter_4.pth').exists()
    assert last_checkpoint(work) == 'iter_2.pth'  # still names a complete checkpoint

    # 3. resumed again, to the end (in this process; `--resume` = the latest checkpoint)
    from mmengine.hooks import Hook
    seen = {}

    class ResumedAt(Hook):
        def before_train(self, runner):
            seen['iter'] = runner.iter

    plain = write_config(tmp_path / 'plain.py', tiny_synthscenes, work)
    runner = train_tool.build_runner([plain, '--work-dir', str(work), '--resume'])
    runner.register_hook(ResumedAt(), priority='LOWEST')
    runner.train()
    assert seen == {'iter': 2}
    assert not any(p.startswith('.') and '.tmp-' in p for p in os.listdir(work))  # cleaned
    assert last_checkpoint(work) == f'iter_{MAX_ITERS}.pth'

    # 4. the same run, uninterrupted
    whole = tmp_path / 'whole'
    train_tool.main([write_config(tmp_path / 'whole.py', tiny_synthscenes, whole),
                     '--work-dir', str(whole)])

    for name in ('iter_2.pth', 'iter_4.pth', f'iter_{MAX_ITERS}.pth'):
        got, want = safe_load(work / name), safe_load(whole / name)
        assert got['meta']['iter'] == want['meta']['iter']
        # generator, discriminator, EMA generator: every parameter and buffer
        parts = {k.split('.')[0] for k in want['state_dict']}
        assert {'generator', 'discriminator', 'generator_ema'} <= parts
        assert_identical(got['state_dict'], want['state_dict'], f'{name}:state_dict')
        assert set(want['optimizer']) == {'generator', 'discriminator'}  # both Adams
        assert_identical(got['optimizer'], want['optimizer'], f'{name}:optimizer')
        assert_identical(got['rng_state'], want['rng_state'], f'{name}:rng_state')
        info = got['message_hub']['runtime_info']
        assert info['iter'] == want['message_hub']['runtime_info']['iter']


def test_synthesize_skip_existing_finishes_a_killed_run(tiny_synthscenes, tmp_path):
    """What a killed tools/synthesize.py leaves (complete images, a temporary file) is cleaned
    up and completed by --skip-existing, and the result equals a whole run's, byte for byte."""
    import synthesize as synthesize_tool

    from catgen.apis import load_inference_config
    from catgen.registry import MODELS
    from catgen.utils.io import temporary_path

    opts = {k: v for k, v in tiny_oasis_options(tiny_synthscenes, tmp_path / 'w').items()
            if k.startswith('model.') or k.endswith('dataset.data_root')}
    model = MODELS.build(load_inference_config(CONFIG, opts).model)
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    labels = tiny_synthscenes / 'source' / 'annotations' / 'val'
    args = [CONFIG, str(ckpt), '--labels', str(labels), '--num-samples', '2', '--cfg-options',
            *[f'{k}={v}' for k, v in opts.items()]]

    whole = tmp_path / 'whole'
    written = synthesize_tool.main(args + ['--out', str(whole)])
    assert len(written) == 16 and all(p.is_file() for p in written)

    # a killed run: 3 label maps done, one image of the 4th done, the 5th's being written
    part = tmp_path / 'part'
    part.mkdir()
    for name in ('000000_0', '000000_1', '000001_0', '000001_1', '000002_0', '000002_1',
                 '000003_0'):
        (part / f'{name}.png').write_bytes((whole / f'{name}.png').read_bytes())
    kept = (part / '000000_0.png').stat().st_mtime_ns
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    stale = temporary_path(part / '000004_0.png', pid=int(dead.stdout))
    stale.write_bytes(b'\x89PNG truncated')

    written = synthesize_tool.main(args + ['--out', str(part), '--skip-existing'])
    assert sorted(p.name for p in written) == sorted(
        [f'{i:06d}_{k}.png' for i in range(3, 8) for k in range(2)])
    assert not stale.exists()
    assert (part / '000000_0.png').stat().st_mtime_ns == kept  # not rewritten
    assert sorted(os.listdir(part)) == sorted(os.listdir(whole))
    for name in os.listdir(whole):
        assert (part / name).read_bytes() == (whole / name).read_bytes(), name
