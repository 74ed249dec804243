"""Safe checkpoint loading: MMEngine resumes, unsafe payloads are refused, mismatches explained."""
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging.history_buffer import HistoryBuffer

from catgen.utils.checkpoint import (CheckpointMismatchError, UnsafeCheckpointError,
                                     install_safe_globals, load_state_dict_checked, safe_load)
from catgen.utils.setup_env import guarded_default_scope, setup_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_runner import ToyData, ToyModel  # noqa: E402

# ------------------------------------------------------------------------------ Runner resume


def _runner(work_dir, name, max_iters, **kwargs):
    from mmengine.runner import Runner
    return Runner(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=ToyData(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmengine', randomness=dict(seed=0), **kwargs)


def test_runner_resumes_after_catgen_setup(tmp_path):
    with guarded_default_scope(None):  # the runners' DefaultScope does not leak into other tests
        first = _runner(tmp_path, 'first', max_iters=2)
        first.train()
        ckpt = tmp_path / 'iter_2.pth'
        assert ckpt.is_file()
        trained = {k: v.clone() for k, v in first.model.state_dict().items()}
        momentum = first.optim_wrapper.optimizer.state_dict()['state'][0]['momentum_buffer']

        # Without an allowlist, torch >= 2.6 refuses MMEngine's own checkpoint (the bug).
        saved = torch.serialization.get_safe_globals()
        torch.serialization.clear_safe_globals()
        try:
            with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
                torch.load(ckpt, map_location='cpu')
        finally:
            torch.serialization.add_safe_globals(saved)

        setup_env()
        second = _runner(tmp_path, 'second', max_iters=3, resume=True, load_from=str(ckpt))
        assert any(not torch.equal(v, trained[k]) for k, v in second.model.state_dict().items())
        second.load_or_resume()  # what train() does first
        assert second.iter == 2
        for key, value in second.model.state_dict().items():
            assert torch.equal(value, trained[key]), key
        state = second.optim_wrapper.optimizer.state_dict()['state'][0]
        assert torch.equal(state['momentum_buffer'], momentum)
        loss_history = second.message_hub.get_scalar('train/loss')
        assert isinstance(loss_history, HistoryBuffer) and len(loss_history.data[0]) == 2
        second.train()  # and training goes on from there
        assert second.iter == 3
        assert safe_load(tmp_path / 'iter_3.pth')['meta']['iter'] == 3  # save_last


# ------------------------------------------------------------------------------ unsafe payloads


def _leave_marker(path):
    """The 'malicious' code: harmless, but detectable (it creates a file)."""
    with open(path, 'w') as f:
        f.write('payload ran')
    return 'pwned'


class CallsAFunction:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return _leave_marker, (self.marker,)


class CallsOsSystem:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


class PoisonsModuleGlobals:
    """getattr(HistoryBuffer.mean, '__globals__')['np'] = None, if getattr were allowed."""

    def __reduce__(self):
        return getattr, (HistoryBuffer.mean, '__globals__'), None, None, iter([('np', None)])


def _save_with(tmp_path, payload, name):
    path = tmp_path / name
    torch.save({'state_dict': {'w': torch.zeros(2)}, 'meta': {'note': payload}}, path)
    return path


def test_payload_is_live_under_plain_pickle(tmp_path):
    marker = tmp_path / 'live'
    assert pickle.loads(pickle.dumps(CallsAFunction(marker))) == 'pwned'
    assert marker.read_text() == 'payload ran'  # so the checks below mean something


@pytest.mark.parametrize('payload_cls, offending', [
    (CallsAFunction, '_leave_marker'),
    (CallsOsSystem, 'system'),
])
def test_malicious_payload_is_refused_and_never_runs(tmp_path, payload_cls, offending):
    marker = tmp_path / 'marker'
    path = _save_with(tmp_path, payload_cls(marker), 'evil.pth')
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_load(path)
    message = str(info.value)
    assert str(path) in message
    assert offending in message
    assert "outside catgen's allowlist" in message
    assert 'refused this file for safety' in message
    assert 'What to do' in message and 'weights_only=False' in message
    assert not marker.exists()


def test_getattr_is_limited_to_history_buffer_statistics(tmp_path):
    import mmengine.logging.history_buffer as hb_module
    path = _save_with(tmp_path, PoisonsModuleGlobals(), 'poison.pth')
    refused = r"getattr\(.*HistoryBuffer.mean, '__globals__'\)"
    with pytest.raises(UnsafeCheckpointError, match=refused):
        safe_load(path)
    assert hb_module.np is np
    # what MMEngine really writes, getattr(HistoryBuffer, 'mean'), still loads
    buf = HistoryBuffer([1.0, 3.0], [1, 1])
    path = tmp_path / 'buffer.pth'
    torch.save({'buf': buf, 'eta': np.float64(1.5), 'count': np.int64(3)}, path)
    loaded = safe_load(path)
    assert loaded['buf'].mean() == 2.0 and loaded['eta'] == 1.5 and loaded['count'] == 3


def test_allowlist_is_exactly_what_mmengine_checkpoints_need():
    names = {name for _, name in install_safe_globals()}
    assert names == {
        'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr',
        'numpy.ndarray', 'numpy.dtype', 'numpy.dtypes.Float64DType', 'numpy.dtypes.Int64DType',
        'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar',
        'numpy.core.multiarray._reconstruct', 'numpy.core.multiarray.scalar'}
    safe = torch.serialization.get_safe_globals()
    assert getattr not in safe  # the builtin itself is never allowlisted


def test_safe_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        safe_load(tmp_path / 'nope.pth')


# ------------------------------------------------------------------------------ mismatches


class Head(nn.Module):
    def __init__(self, num_classes, extra=False):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3)
        self.cls = nn.Conv2d(8, num_classes, 1)
        if extra:
            self.aux = nn.Linear(8, 2)


def test_mismatch_message_lists_keys_and_both_shapes():
    ckpt = Head(num_classes=151, extra=True).state_dict()
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_checked(Head(num_classes=35), ckpt, source='ade20k.pth')
    msg = str(info.value)
    assert msg.startswith('The weights from ade20k.pth do not fit Head: 0 missing, 2 unexpected, '
                          '2 shape mismatches.')
    assert 'unexpected keys (in the checkpoint, not in the model) (2):' in msg
    assert 'aux.weight' in msg and 'aux.bias' in msg
    assert 'cls.weight: checkpoint [151, 8, 1, 1] vs model [35, 8, 1, 1]' in msg
    assert 'cls.bias: checkpoint [151] vs model [35]' in msg
    assert 'another number of classes' in msg
    # shapes fail even when not strict; missing/unexpected alone do not
    with pytest.raises(CheckpointMismatchError, match=r'cls\.weight: checkpoint \[151'):
        load_state_dict_checked(Head(num_classes=35), ckpt, strict=False)
    model = Head(num_classes=151)
    result = load_state_dict_checked(model, ckpt, strict=False)
    assert result.unexpected_keys == ['aux.weight', 'aux.bias']
    assert torch.equal(model.cls.weight, ckpt['cls.weight'])


def test_mismatch_message_truncates_and_suggests_prefix():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(15)])  # 30 keys
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_checked(model, {f'module.{k}': v for k, v in model.state_dict().items()})
    msg = str(info.value)
    assert '30 missing, 30 unexpected, 0 shape mismatches' in msg
    assert '... and 20 more' in msg
    assert msg.count('module.') <= 12  # 10 listed + the hint
    assert "'module.' prefix the model's do not: strip it" in msg
    with pytest.raises(CheckpointMismatchError, match="'generator.' prefix the model's do not"):
        load_state_dict_checked(model, {f'generator.{k}': v for k, v in model.state_dict().items()},
                                prefix_hint='generator.')
    with pytest.raises(CheckpointMismatchError, match=r"pass ckpt\['state_dict'\]"):
        load_state_dict_checked(model, {'state_dict': model.state_dict(), 'meta': {}})


# ------------------------------------------------------------------------ read_state_dict
def test_read_state_dict_unwraps_and_picks_a_prefix_with_fallbacks(tmp_path):
    from catgen.utils.checkpoint import read_state_dict
    w = torch.zeros(2)
    ckpt = {'meta': {'iter': 3}, 'state_dict': {
        'generator.conv.weight': w, 'discriminator.head.bias': w + 1}}
    assert set(read_state_dict(ckpt)) == {'generator.conv.weight', 'discriminator.head.bias'}
    # EMA preferred, plain generator as the fallback
    sd = read_state_dict(ckpt, prefix=('generator_ema.module.', 'generator.'))
    assert list(sd) == ['conv.weight'] and sd['conv.weight'] is w
    ckpt['state_dict']['generator_ema.module.conv.weight'] = w + 2
    sd = read_state_dict(ckpt, prefix=('generator_ema.module.', 'generator.'))
    torch.testing.assert_close(sd['conv.weight'], w + 2)
    # from a file, a bare state dict, and DINO-style wrappers
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    assert list(read_state_dict(path, prefix='discriminator.')) == ['head.bias']
    assert list(read_state_dict({'x.y': w})) == ['x.y']
    assert list(read_state_dict({'teacher': {'backbone.blocks.0': w}},
                                strip_prefixes=('backbone.',))) == ['blocks.0']


def test_read_state_dict_strips_ddp_prefixes_before_and_after_the_selection():
    from catgen.utils.checkpoint import read_state_dict
    w = torch.ones(1)
    whole = {'state_dict': {'module.generator.a': w, 'module.module.discriminator.b': w}}
    assert list(read_state_dict(whole, prefix='generator.')) == ['a']
    assert list(read_state_dict(whole, prefix='discriminator.')) == ['b']
    part = {'generator_ema.module.c': w}
    assert list(read_state_dict(part, prefix='generator_ema.')) == ['c']
    assert list(read_state_dict(part, prefix='generator_ema.', strip_prefixes=())) == \
        ['module.c']


def test_read_state_dict_errors_name_the_file_prefixes_and_what_was_found(tmp_path):
    from catgen.utils.checkpoint import read_state_dict
    path = tmp_path / 'gen_only.pth'
    torch.save({'state_dict': {'generator.x': torch.zeros(1), 'ema.y': torch.zeros(1)}}, path)
    with pytest.raises(ValueError) as err:
        read_state_dict(path, prefix=('discriminator.', 'disc.'), what='OASIS checkpoint')
    msg = str(err.value)
    for part in (str(path), '"discriminator.*"', '"disc.*"', "generator.", "ema.",
                 'set prefix='):
        assert part in msg, (part, msg)
    with pytest.raises(ValueError, match='holds a list, not a dict of weights'):
        read_state_dict([1, 2])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        read_state_dict(tmp_path / 'missing.pth')
