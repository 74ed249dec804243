"""tools/demo.py's pieces (the whole demo is measured in docs/benchmarks.md, not run here)."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def demo():
    spec = importlib.util.spec_from_file_location('catgen_tool_demo', ROOT / 'tools' / 'demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_marks_the_best_of_each_column():
    d = demo()
    results = {'training-free CAT': {'seg/mIoU': 40.0, 'fid_seg-fcn_synthscenes-target': 30.0,
                                     'color/mean_dist': 20.0},
               'finetune-all, 100 images': {'seg/mIoU': 10.0,
                                            'fid_seg-fcn_synthscenes-target': 90.0},
               'CAT, 100 images': {'seg/mIoU': 60.0, 'fid_seg-fcn_synthscenes-target': 20.0,
                                   'color/mean_dist': 25.0}}
    lines = d.table(results).splitlines()
    assert lines[0].startswith('| | mIoU (higher is better) | FID')
    assert lines[2] == '| training-free CAT | 40.00 | 30.00 | **20.00** | n/a |'
    assert lines[3] == '| finetune-all, 100 images | 10.00 | 90.00 | n/a | n/a |'
    assert lines[4] == '| CAT, 100 images | **60.00** | **20.00** | 25.00 | n/a |'


def test_steps_that_are_done_are_skipped_and_bad_iters_refused(tmp_path, capsys):
    d = demo()
    args = d.parse_args(['--iters', '3'])
    assert args.iters == 3 and args.out == 'work_dirs/demo' and not args.retrain_source
    cmd = d.train_cmd('python', 'cfg.py', str(tmp_path), ['a=1'], args, ['--threads', '1'])
    assert cmd[:6] == ['python', 'tools/train.py', 'cfg.py', '--work-dir', str(tmp_path),
                       '--threads'] and 'train_cfg.max_iters=3' in cmd
    (tmp_path / 'iter_3.pth').write_bytes(b'')
    assert d.train_cmd('python', 'cfg.py', str(tmp_path), [], args, []) is None
    assert d.test_cmd('python', 'cfg.py', 'none', str(tmp_path), [], []) is not None
    (tmp_path / 'metrics.json').write_text('{}')
    assert d.test_cmd('python', 'cfg.py', 'none', str(tmp_path), [], []) is None
    with pytest.raises(SystemExit):
        d.parse_args(['--iters', '0'])
    assert '--iters must be positive' in capsys.readouterr().err


def test_a_failed_parallel_step_names_its_log(tmp_path):
    d = demo()
    ok = [sys.executable, '-c', 'print("Iter(train) [1/1]")']
    bad = [sys.executable, '-c', 'import sys; sys.exit(3)']
    with pytest.raises(SystemExit, match=r'demo step failed: bad \(see .*bad\.log\)'):
        d.run_parallel([('ok', ok, str(tmp_path / 'ok.log')),
                        ('bad', bad, str(tmp_path / 'bad.log'))])
    assert d.last_progress(tmp_path / 'ok.log') == 'Iter(train) [1/1]'
