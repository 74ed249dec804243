"""tools/prepare_synthscenes.py: the small set, idempotence, crash safety."""
import importlib.util
import json
from pathlib import Path

import pytest

import catgen.datasets.synthscenes.generate as generate

REPO = Path(__file__).resolve().parents[3]
TINY = ['--num-train-source', '2', '--num-val-source', '1', '--num-train-target', '6',
        '--num-val-target', '1', '--no-progress']
TINY_SETTINGS = dict(num_train_source=2, num_val_source=1, num_train_target=6, num_val_target=1)


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('prepare_synthscenes',
                                                  REPO / 'tools' / 'prepare_synthscenes.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _count(path):
    return sum(1 for p in path.rglob('*.png'))


def test_small_set_then_nothing_to_do(tool, tmp_path, capsys):
    out = tmp_path / 'synth'
    assert tool.main(['--out', str(out), '--small', '--no-progress']) == 0
    assert 'wrote 200 scenes' in capsys.readouterr().out
    assert _count(out) == 2 * (64 + 16 + 100 + 20)
    meta = json.loads((out / 'classes.json').read_text())
    assert meta['settings']['num_train_target'] == 100 and meta['settings']['resolution'] == 64
    shots = sorted(int(p.stem.split('_')[1]) for p in (out / 'target' / 'few_shot').iterdir())
    assert shots == [1, 5, 25, 50, 100]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['synth']
    mtime = (out / 'classes.json').stat().st_mtime_ns
    assert tool.main(['--out', str(out), '--small', '--no-progress']) == 0
    assert 'already holds a complete set' in capsys.readouterr().out
    assert (out / 'classes.json').stat().st_mtime_ns == mtime


def test_killed_run_leaves_no_set_and_a_rerun_completes(tool, tmp_path, monkeypatch):
    out = tmp_path / 'synth'
    real = generate._write_range
    calls = []

    def dying(*args):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill in the middle of the set
        return real(*args)

    monkeypatch.setattr(generate, '_write_range', dying)
    with pytest.raises(KeyboardInterrupt):
        tool.main(['--out', str(out), *TINY])
    assert list(tmp_path.iterdir()) == []  # neither a half set nor the temporary folder
    # A half set from an older kill (no classes.json) is replaced by a complete one.
    monkeypatch.setattr(generate, '_write_range', real)
    (out / 'source' / 'images' / 'train').mkdir(parents=True)
    (out / 'source' / 'images' / 'train' / '000000.png').write_bytes(b'junk')
    assert tool.main(['--out', str(out), *TINY]) == 0
    assert generate.is_complete(out, generate.make_settings(**TINY_SETTINGS))
    assert _count(out) == 20 and sorted(p.name for p in tmp_path.iterdir()) == ['synth']


def test_other_settings_replace_and_foreign_folders_are_refused(tool, tmp_path, capsys):
    out = tmp_path / 'synth'
    assert tool.main(['--out', str(out), *TINY, '--seed', '1']) == 0
    assert tool.main(['--out', str(out), *TINY, '--seed', '2']) == 0
    assert json.loads((out / 'classes.json').read_text())['settings']['seed'] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ['synth']
    foreign = tmp_path / 'home'
    foreign.mkdir()
    (foreign / 'thesis.tex').write_text('precious')
    assert tool.main(['--out', str(foreign), *TINY]) == 2
    assert 'not a SynthScenes folder' in capsys.readouterr().err
    assert (foreign / 'thesis.tex').read_text() == 'precious'
    assert tool.main(['--out', str(tmp_path / 'x'), *TINY, '--resolution', '4']) == 2
    assert not (tmp_path / 'x').exists()
