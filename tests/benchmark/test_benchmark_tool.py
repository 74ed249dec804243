"""tools/benchmark.py on a tiny grid: runs, skips finished runs, resumes, writes table, CSV, plots."""
import csv
import importlib.util
import json
import os
import os.path as osp
import sys

import pytest
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from conftest import tiny_oasis_options  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location('bench_tool', osp.join(ROOT, 'tools',
                                                                          'benchmark.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_bench_config(path, data_root, work_dir):
    opts = tiny_oasis_options(data_root, work_dir)
    opts = {k: v for k, v in opts.items()
            if not k.startswith(('train_cfg', 'default_hooks.checkpoint', 'work_dir'))}
    opts['custom_hooks'] = [dict(type='SaveSubsetIdsHook')]
    opts['test_dataloader.dataset.data_root'] = str(data_root)
    for shots in (5, 25):  # a strategy config per shot count, as in configs/<method>/
        (path.parent / f'scratch_{shots}.py').write_text(
            f"_base_ = [{osp.join(ROOT, 'configs/scratch/oasis_synthscenes_100.py')!r}]\n"
            f"train_dataloader = dict(dataset=dict(num_shots={shots}))\n")
    pattern = str(path.parent / 'scratch_{shots}.py')
    text = f"""
work_dir = {str(work_dir)!r}
strategies = dict(
    scratch={pattern!r},
    untrained=dict(config={pattern!r}, train=False, checkpoint='random', shot_independent=True),
)
shots = [5, 25]
seeds = [0]
iters = 2
num_eval_samples = 2
options = {opts!r}
evaluator = [dict(type='ClassColorDistance', num_classes=12)]
metrics = [dict(key='color/mean_dist', name='colour dist', lower_is_better=True),
           dict(key='color/num_classes', name='classes', lower_is_better=False)]
checks = [dict(better='scratch', worse='untrained', shots=25, metric='color/mean_dist'),
          dict(better='scratch', worse='missing', shots=25, metric='color/mean_dist')]
"""
    path.write_text(text)
    return str(path)


@pytest.mark.slow
def test_benchmark_grid_runs_resumes_and_reports(tiny_synthscenes, tmp_path, capsys):
    tool = load_tool()
    work = tmp_path / 'bench'
    cfg = write_bench_config(tmp_path / 'bench_cfg.py', tiny_synthscenes, work)

    runs = tool.main([cfg, '--dry-run'])
    assert [r.name for r in runs] == ['scratch_5shots_seed0', 'scratch_25shots_seed0',
                                      'untrained_5shots_seed0', 'untrained_25shots_seed0']
    assert runs[3].reuse_from == runs[2].work_dir and not runs[2].train

    report = tool.main([cfg])
    # every run has its own work dir with config, checkpoint (trained runs) and record
    for name in ('scratch_5shots_seed0', 'scratch_25shots_seed0'):
        d = work / name
        assert (d / 'iter_2.pth').is_file() and (d / 'config.py').is_file()
        rec = json.loads((d / 'run.json').read_text())
        assert rec['strategy'] == 'scratch' and rec['train'] and rec['train_s'] > 0
        assert 0 < rec['metrics']['color/mean_dist'] < 255
        # the run's config carries the benchmark's budget, seed and evaluator
        text = (d / 'config.py').read_text()
        assert 'max_iters=2' in text and 'ClassColorDistance' in text
    # the 5- and 25-shot runs really trained on their own subsets
    ids5 = (work / 'scratch_5shots_seed0' / 'train_ids.txt').read_text().split()
    ids25 = (work / 'scratch_25shots_seed0' / 'train_ids.txt').read_text().split()
    assert len(ids5) == 5 and len(ids25) == 25 and set(ids5) <= set(ids25)
    untrained = json.loads((work / 'untrained_25shots_seed0' / 'run.json').read_text())
    assert untrained['reused_from'].endswith('untrained_5shots_seed0')
    assert not (work / 'untrained_5shots_seed0' / 'iter_2.pth').exists()

    # CSV: one row per run, metric columns
    with open(work / 'results.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r['strategy'] for r in rows} == {'scratch', 'untrained'}
    assert all(float(r['color/mean_dist']) > 0 for r in rows)
    # Markdown: a table per shot count, the checks with a verdict
    md = (work / 'results.md').read_text()
    assert '### 5 shots' in md and '### 25 shots' in md and '| scratch |' in md
    assert 'scratch better than untrained' in md and 'not measured' in md
    checks = json.loads((work / 'checks.json').read_text())
    assert checks[0]['holds'] in (True, False) and checks[1]['holds'] is None
    for png in ('metric_vs_shots.png', 'bars_5shots.png', 'bars_25shots.png'):
        with Image.open(work / png) as im:
            assert im.size[0] > 200 and im.size[1] > 100
    assert report['table'][('scratch', 25)]['color/mean_dist'][2] == 1

    # resumable: a second call skips every finished run
    mtimes = {p: os.stat(p).st_mtime_ns for p in work.glob('*/run.json')}
    capsys.readouterr()
    tool.main([cfg])
    out = capsys.readouterr().out
    assert out.count('finished, skipped') == 4
    assert {p: os.stat(p).st_mtime_ns for p in work.glob('*/run.json')} == mtimes

    # a run killed after training but before its record: only the evaluation is redone
    (work / 'scratch_25shots_seed0' / 'run.json').unlink()
    ckpt = work / 'scratch_25shots_seed0' / 'iter_2.pth'
    ckpt_mtime = os.stat(ckpt).st_mtime_ns
    tool.main([cfg])
    assert os.stat(ckpt).st_mtime_ns == ckpt_mtime
    rec = json.loads((work / 'scratch_25shots_seed0' / 'run.json').read_text())
    assert rec['train_s'] > 0  # the earlier attempt's training time is kept


def test_benchmark_config_errors(tmp_path):
    from catgen.benchmark import expand_grid
    bench = dict(work_dir=str(tmp_path), shots=[25], seeds=[0],
                 strategies=dict(a='configs/nonexistent/x_{shots}.py'))
    with pytest.raises(FileNotFoundError, match='nonexistent/x_25.py'):
        expand_grid(bench)
    bench['strategies'] = dict(a=dict(cfg='x'))
    with pytest.raises(ValueError, match='expected dict\\(config=PATTERN'):
        expand_grid(bench)
    bench['strategies'] = dict(a='configs/scratch/oasis_synthscenes_{shots}.py')
    with pytest.raises(KeyError, match="'b'"):
        expand_grid(bench, only=['b'])


def test_synthscenes_benchmark_config_covers_every_strategy():
    """configs/benchmarks/synthscenes_transfer.py: every registered strategy at 25 and 100 shots."""
    from mmengine.config import Config

    from catgen.benchmark import expand_grid
    bench = Config.fromfile(osp.join(ROOT, 'configs/benchmarks/synthscenes_transfer.py'))
    runs = expand_grid(bench)
    assert sorted(bench.shots) == [25, 100]
    types = set()
    for run in runs:
        cfg = Config.fromfile(osp.join(ROOT, run.config))
        types.add(cfg.model.transfer.type)
        if run.train and 'num_shots' in cfg:
            assert cfg.train_dataloader.dataset.num_shots == run.shots
    assert types >= {'Scratch', 'FinetuneAll', 'FreezeD', 'BSA', 'EWC', 'CDC', 'DCL', 'CAT',
                     'CATTrainingFree'}
    # 3 seeds per cell, curves for finetune-all, EWC and CAT, CAT with the segmenter affinity,
    # and every run sees the same training images (CDC's batch 4 gets twice the iterations)
    assert list(bench.seeds) == [0, 1, 2]
    from catgen.benchmark.grid import build_run_config
    by_name = {r.name: r for r in runs}
    assert by_name['cat_100shots_seed0'].curve_interval == 500
    assert by_name['scratch_100shots_seed0'].curve_interval == 0
    seg = build_run_config(bench, by_name['cat_segmenter_100shots_seed2'])
    assert seg.model.transfer.affinity.type == 'SegmenterAffinity' and seg.randomness.seed == 2
    # the override replaces the TextAffinity whole: every key is an argument of the estimator
    import inspect

    from catgen.registry import AFFINITY_ESTIMATORS
    est = AFFINITY_ESTIMATORS.get('SegmenterAffinity')
    accepted = set(inspect.signature(est.__init__).parameters)
    assert set(seg.model.transfer.affinity) - {'type'} <= accepted
    images = set()
    for name in ('cdc_25shots_seed0', 'finetune_all_25shots_seed0', 'bsa_25shots_seed0'):
        cfg = build_run_config(bench, by_name[name])
        images.add(cfg.train_cfg.max_iters * cfg.train_dataloader.batch_size)
    assert images == {bench.iters * bench.batch_size}
    assert any(m['key'] == 'spectrum/axis_excess_db' for m in bench.metrics)


@pytest.mark.slow
def test_curves_parallel_jobs_and_equal_images_budget(tiny_synthscenes, tmp_path):
    """Two runs side by side (--jobs 2, one thread each); a curve point every iteration of the
    reference batch; a run with half the batch trains twice the iterations."""
    tool = load_tool()
    work = tmp_path / 'bench'
    cfg = write_bench_config(tmp_path / 'bench_cfg.py', tiny_synthscenes, work)
    with open(cfg, 'a') as f:
        f.write(f"strategies = dict(scratch={str(tmp_path / 'scratch_{shots}.py')!r}, "
                f"half=dict(config={str(tmp_path / 'scratch_{shots}.py')!r}, "
                "options={'train_dataloader.batch_size': 1}))\n"
                "shots = [5]\nbatch_size = 2\ncurves = dict(strategies=['scratch', 'half'], "
                "interval=1)\nchecks = []\n")
    report = tool.main([cfg, '--jobs', '2'])
    half = json.loads((work / 'half_5shots_seed0' / 'run.json').read_text())
    full = json.loads((work / 'scratch_5shots_seed0' / 'run.json').read_text())
    # batch 1 -> 4 iterations (checkpoints every 2), batch 2 -> 2 iterations (every 1)
    assert (work / 'half_5shots_seed0' / 'iter_4.pth').is_file()
    assert 'max_iters=4' in (work / 'half_5shots_seed0' / 'config.py').read_text()
    assert (work / 'scratch_5shots_seed0' / 'iter_1.pth').is_file()
    # curves keyed by the benchmark's iterations; the last point is the final evaluation
    assert sorted(half['curve']) == sorted(full['curve']) == ['1', '2']
    assert half['curve']['2'] == half['metrics']
    assert (work / 'half_5shots_seed0' / 'curve' / 'iter_2.json').is_file()
    assert 'threads 1' in (work / 'half_5shots_seed0' / 'benchmark.log').read_text()
    with Image.open(work / 'curves_5shots.png') as im:
        assert im.size[0] > 200
    assert 'Metric vs iteration' in (work / 'results.md').read_text()
    assert [p[0] for p in report['curves'][('half', 5)]['color/mean_dist']] == [1, 2]


def test_report_mean_std_over_seeds_and_clear_checks():
    from catgen.benchmark.report import aggregate, check_claims, markdown_table
    bench = dict(strategies=dict(a='x', b='y'),
                 metrics=[dict(key='m', name='m', lower_is_better=True)],
                 checks=[dict(better='a', worse='b', shots=5, metric='m')])
    records = [dict(strategy=s, shots=5, seed=i, metrics=dict(m=v), train_s=1, test_s=1)
               for s, vals in (('a', (1.0, 3.0)), ('b', (2.5, 3.5))) for i, v in enumerate(vals)]
    table = aggregate(records, bench)
    assert table[('a', 5)]['m'] == (2.0, 1.0, 2)
    verdict = check_claims(table, bench)[0]
    assert verdict['holds'] and not verdict['clear']  # 2.0 vs 3.0, spreads 1.0 + 0.5
    md = markdown_table(table, bench, [verdict])
    assert '**2.00 ± 1.00**' in md and "within the seeds' spread" in md
