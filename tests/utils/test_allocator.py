"""catgen.utils.allocator: glibc thresholds set by the entry points, opt-outs, same maths."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from catgen.utils import allocator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def fresh(monkeypatch):
    """Forget whether this process was tuned, and record mallopt calls instead of making them."""
    calls = []
    monkeypatch.setattr(allocator, '_applied', None)
    monkeypatch.setattr(allocator, '_glibc_mallopt',
                        lambda: (lambda param, value: calls.append((param, value)) or 1))
    return calls


def test_sets_thresholds_and_switches_mmap_off(fresh):
    assert allocator.tune_allocator(environ={}) is True
    assert fresh == [(-3, 32 * 2**20), (-1, 2**31 - 1), (-4, 0)]
    assert allocator.tune_allocator(environ={}) is True  # idempotent: no second round of calls
    assert len(fresh) == 3


@pytest.mark.parametrize('env', [{'CATGEN_MALLOC_TUNING': '0'},
                                 {'MALLOC_MMAP_THRESHOLD_': '1000'},
                                 {'MALLOC_TRIM_THRESHOLD_': '1000'},
                                 {'MALLOC_MMAP_MAX_': '4'},
                                 {'GLIBC_TUNABLES': 'glibc.malloc.trim_threshold=1'}])
def test_user_settings_and_opt_out_win(fresh, env):
    assert allocator.tune_allocator(environ=env) is False
    assert fresh == []


def test_not_glibc_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator, '_applied', None)
    monkeypatch.setattr(allocator, '_glibc_mallopt', lambda: None)
    assert allocator.tune_allocator(environ={}) is False


def test_failed_mallopt_reports_false(monkeypatch):
    monkeypatch.setattr(allocator, '_applied', None)
    monkeypatch.setattr(allocator, '_glibc_mallopt', lambda: (lambda param, value: 0))
    assert allocator.tune_allocator(environ={}) is False


def _run(code, tuning):
    env = dict(os.environ, CATGEN_MALLOC_TUNING=tuning, OMP_NUM_THREADS='1')
    for var in ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_MAX_',
                'GLIBC_TUNABLES'):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith('linux') or allocator._glibc_mallopt() is None,
                    reason='glibc only')
def test_freed_buffers_are_reused_not_faulted_in_again():
    """64 MiB buffers allocated, written and freed: without the tuning glibc maps and unmaps
    each one (16k page faults per round, for ever); tuned, the heap settles after a few rounds
    (measured: 8) and then the same pages are reused with no fault at all."""
    code = '''
        import json, resource
        from catgen.utils.allocator import tune_allocator
        applied = tune_allocator()
        import torch
        torch.set_num_threads(1)
        for _ in range(15):  # the heap grows to its steady state: not counted
            torch.empty(16 * 2**20).fill_(1)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            torch.empty(16 * 2**20).fill_(1)  # 64 MiB, freed at once
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        print(json.dumps(dict(applied=applied, faults=faults)))
    '''
    off, on = _run(code, '0'), _run(code, '1')
    assert off['applied'] is False and on['applied'] is True
    assert off['faults'] > 10 * 10000  # 16384 pages per round
    assert on['faults'] < 2000


def test_one_training_step_is_bit_identical_with_and_without_tuning():
    """The allocator decides where buffers live, not what is computed: a tiny OASIS model's
    losses, gradients and updated weights after one train_step are equal bit for bit."""
    code = '''
        import json, hashlib
        from catgen.utils.allocator import tune_allocator
        applied = tune_allocator()
        import torch
        torch.set_num_threads(1)
        from catgen.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
        from catgen.utils.setup_env import register_all_modules
        register_all_modules()
        torch.manual_seed(0)
        model = MODELS.build(dict(
            type='OASISSynthesizer',
            data_preprocessor=dict(type='SISDataPreprocessor', num_classes=4),
            generator=dict(type='OASISGenerator', num_classes=4, z_dim=4, base_channels=2,
                           channel_multipliers=(4, 2, 1), crop_size=32, spade_hidden=8),
            discriminator=dict(type='OASISDiscriminator', num_classes=4, base_channels=4,
                               channel_multipliers=(1, 2)),
            ema_momentum=0.5))
        optim = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
            type='GANOptimWrapperConstructor', optim_wrapper_cfg=dict(
                generator=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.0, 0.999))),
                discriminator=dict(optimizer=dict(type='Adam', lr=4e-3,
                                                  betas=(0.0, 0.999))))))(model)
        g = torch.Generator().manual_seed(1)
        data = dict(inputs=dict(img=list(torch.randint(0, 256, (2, 3, 32, 32), generator=g,
                                                       dtype=torch.uint8)),
                                label=list(torch.randint(0, 4, (2, 32, 32), generator=g))))
        # gradients of the step: the update is lr-scaled Adam of them, so compare both
        grads = {}
        for name, p in model.named_parameters():
            if p.requires_grad:  # not the EMA copy
                    p.register_hook(lambda grad, name=name: grads.__setitem__(name, grad.clone()))
        logs = model.train_step(data, optim)
        h = hashlib.sha256()
        for name in sorted(grads):
            h.update(grads[name].numpy().tobytes())
        for name, t in sorted(model.state_dict().items()):
            h.update(t.numpy().tobytes())
        print(json.dumps(dict(applied=applied, logs={k: float(v) for k, v in logs.items()},
                              n_grads=len(grads), digest=h.hexdigest())))
    '''
    off, on = _run(code, '0'), _run(code, '1')
    assert on['applied'] is True and off['applied'] is False
    assert off['n_grads'] > 20
    assert on['logs'] == off['logs']
    assert on['digest'] == off['digest']
