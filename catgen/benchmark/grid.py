"""A comparative benchmark: a grid of strategies x shot counts x seeds, one work dir per run.

A benchmark config (``configs/benchmarks/*.py``) names, per strategy, the training config of each
shot count (a path pattern with ``{shots}``), and the budget, evaluator and options shared by all
runs. :func:`expand_grid` turns it into :class:`BenchmarkRun` s; :func:`run_one` trains a run with
``tools/train.py`` and evaluates it with ``tools/test.py`` (two subprocesses, so one failing or
killed run never takes the others down), and records everything in ``<run dir>/run.json``, which
is written last and atomically: a run with that file is finished and is skipped next time; a run
without it resumes training from its last checkpoint.

Benchmark config keys (see configs/benchmarks/synthscenes_transfer.py):

- ``work_dir``: where the run dirs, the table, the CSV and the plots go.
- ``strategies``: ``{name: dict(config=PATTERN, train=True, shot_independent=False,
  options={...})}`` (a plain PATTERN string is short for ``dict(config=PATTERN)``).
  ``train=False`` evaluates the model as built (training-free methods, checkpoint ``none``;
  ``checkpoint='random'`` for the untrained floor: random weights, said explicitly);
  ``shot_independent=True`` evaluates it once and reuses the result for every shot count.
- ``shots``: list of shot counts; ``seeds``: list of training seeds (``randomness.seed``).
- ``iters``: the training budget in iterations, the same for every trained run; with
  ``batch_size`` (the reference batch), a run whose config trains with another batch size gets
  ``iters * batch_size / its batch size`` iterations instead, so that every run sees the same
  number of training images (CDC's published batch is 4).
- ``options``: config overrides applied to every run (dotted keys or nested dicts).
- ``evaluator``: the test evaluator of every run (the same metrics for all).
- ``num_eval_samples``: images generated per evaluation label map (diversity metrics need 2+).
- ``metrics``: the columns of the table and plots: list of ``dict(key=, name=, lower_is_better=)``.
- ``checks``: claims to verify: list of ``dict(better=, worse=, shots=, metric=)`` (metric = key).
- ``curves``: optional ``dict(strategies=[names], interval=N)``: the runs of these strategies keep
  a checkpoint every N iterations, each is evaluated like the final one (``curve/iter_<k>.json``),
  and the report draws metric-vs-iteration curves (has the budget flattened the curve?).
- Curves measured DURING training by an :class:`~catgen.engine.hooks.AdaptationCurveHook` (DCL's
  quality and diversity, ``adaptation_curves.json`` in the run dir) join the run's curve and its
  final metrics as ``adapt/realism`` and ``adapt/intra_lpips...``: name those keys in
  ``metrics`` to get them in the table and in ``curves_<shots>shots.png``.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from catgen.utils.io import write_text_atomic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@dataclass
class BenchmarkRun:
    """One cell of the grid.

    Args:
        strategy: the strategy's name in the benchmark config.
        shots: few-shot training images.
        seed: training seed.
        config: the strategy's training config for this shot count.
        train: False for a model evaluated as built (no checkpoint).
        checkpoint: what tools/test.py gets when ``train`` is False: 'none' (a training-free
            strategy) or 'random' (the untrained model as built).
        work_dir: this run's own directory.
        options: config overrides of this run (benchmark-wide, then strategy-specific).
        reuse_from: the run whose result this one copies (shot-independent strategies).
        curve_interval: evaluate a checkpoint every this many iterations too (0: only the
            final one).
    """
    strategy: str
    shots: int
    seed: int
    config: str
    train: bool
    work_dir: str
    options: dict = field(default_factory=dict)
    checkpoint: str = 'none'
    reuse_from: str = None
    curve_interval: int = 0

    @property
    def name(self):
        return f'{self.strategy}_{self.shots}shots_seed{self.seed}'

    @property
    def record_path(self):
        return osp.join(self.work_dir, 'run.json')

    def finished(self):
        return osp.isfile(self.record_path)

    def record(self):
        with open(self.record_path) as f:
            return json.load(f)


def _strategy_spec(name, spec):
    if isinstance(spec, str):
        spec = dict(config=spec)
    unknown = set(spec) - {'config', 'train', 'shot_independent', 'options', 'checkpoint'}
    if 'config' not in spec or unknown:
        raise ValueError(f'benchmark strategy {name!r}: expected dict(config=PATTERN, train=True, '
                         f'shot_independent=False, options={{}}, checkpoint="none"|"random"), '
                         f'got keys {sorted(spec)}')
    if spec.get('checkpoint', 'none') not in ('none', 'random'):
        raise ValueError(f'benchmark strategy {name!r}: checkpoint must be "none" (training-free) '
                         f'or "random" (untrained), got {spec["checkpoint"]!r}')
    return {**dict(train=True, shot_independent=False, options={}, checkpoint='none'), **spec}


def expand_grid(bench_cfg, work_dir=None, only=None):
    """The runs of ``bench_cfg`` (an mmengine Config or dict), strategies in config order, then
    shot counts, then seeds. ``only``: restrict to these strategy names."""
    work_dir = work_dir or bench_cfg['work_dir']
    strategies = bench_cfg['strategies']
    if only:
        missing = sorted(set(only) - set(strategies))
        if missing:
            raise KeyError(f'--only {missing}: not in the benchmark; its strategies are '
                           f'{list(strategies)}')
    curves = dict(bench_cfg.get('curves') or {})
    curve_names = list(curves.get('strategies', []))
    interval = int(curves.get('interval', 0))
    unknown = sorted(set(curve_names) - set(strategies))
    if unknown or (curve_names and interval <= 0):
        raise ValueError(f'benchmark curves: expected dict(strategies=[names of strategies], '
                         f'interval=N > 0); unknown strategies {unknown}, interval {interval}')
    runs = []
    for name, spec in strategies.items():
        if only and name not in only:
            continue
        spec = _strategy_spec(name, spec)
        first = None
        for shots in bench_cfg['shots']:
            for seed in bench_cfg.get('seeds', [0]):
                config = spec['config'].format(shots=shots)
                if not osp.isfile(osp.join(ROOT, config)) and not osp.isfile(config):
                    raise FileNotFoundError(f'benchmark strategy {name!r}: config {config} (from '
                                            f'{spec["config"]!r} with shots={shots}) not found')
                run = BenchmarkRun(
                    strategy=name, shots=int(shots), seed=int(seed), config=config,
                    train=bool(spec['train']),
                    work_dir=osp.join(work_dir, f'{name}_{shots}shots_seed{seed}'),
                    options=dict(spec['options']), checkpoint=spec['checkpoint'],
                    curve_interval=interval if name in curve_names and spec['train'] else 0)
                if spec['shot_independent']:
                    key = (seed,)
                    first = first or {}
                    if key in first:
                        run.reuse_from = first[key].work_dir
                    else:
                        first[key] = run
                runs.append(run)
    return runs


def build_run_config(bench_cfg, run):
    """The full training/evaluation config of ``run``: the strategy's config with the benchmark's
    budget, seed, evaluator and options applied. Returns an mmengine Config."""
    from mmengine.config import Config
    cfg = Config.fromfile(run.config if osp.isabs(run.config) else osp.join(ROOT, run.config))
    cfg.merge_from_dict(dict(bench_cfg.get('options', {})))
    cfg.merge_from_dict(run.options)
    iters, scale = int(bench_cfg['iters']), 1
    if bench_cfg.get('batch_size') and cfg.get('train_dataloader'):
        batch = int(cfg.train_dataloader.batch_size)
        if (int(bench_cfg['batch_size']) * iters) % batch:
            raise ValueError(f'benchmark run {run.name}: {iters} iterations of batch '
                             f'{bench_cfg["batch_size"]} cannot be matched with batch {batch} '
                             f'({run.config}); choose iters divisible accordingly')
        scale = int(bench_cfg['batch_size']) / batch
        iters = int(int(bench_cfg['batch_size']) * iters // batch)
    interval = int(run.curve_interval * scale)
    overrides = {
        'work_dir': run.work_dir,
        'randomness.seed': run.seed,
        'model.num_eval_samples': int(bench_cfg.get('num_eval_samples', 1)),
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': interval or iters,
    }
    if interval:
        overrides['default_hooks.checkpoint.max_keep_ckpts'] = -1  # every curve point
    cfg.merge_from_dict(overrides)
    # No validation during training: every run is evaluated once, by tools/test.py, with the
    # benchmark's own evaluator.
    cfg.val_dataloader = None
    cfg.val_cfg = None
    cfg.val_evaluator = None
    cfg.test_evaluator = bench_cfg['evaluator']
    cfg.benchmark_curve_interval = interval  # read by run_one (no tool reads it)
    return cfg


def _python():
    return sys.executable


def _call(cmd, log_path, threads=None):
    """Run ``cmd`` from the repository root, appending its output to ``log_path``; with
    ``threads``, the process gets ``--threads`` and ``OMP_NUM_THREADS`` of that value."""
    env = None
    if threads:
        cmd = cmd + ['--threads', str(int(threads))]
        env = dict(os.environ, OMP_NUM_THREADS=str(int(threads)))
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(cmd)}\n')
        log.flush()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'`{" ".join(cmd)}` failed with exit code {proc.returncode}; its '
                           f'output is in {log_path}. Fix the cause and run the benchmark again: '
                           'finished runs are skipped, this one resumes from its last checkpoint.')


def _evaluate(cfg_path, checkpoint, work_dir, metrics_path, log_path, threads):
    """tools/test.py of one checkpoint into ``metrics_path``; returns the metrics dict."""
    _call([_python(), 'tools/test.py', cfg_path, checkpoint, '--work-dir', work_dir,
           '--out', metrics_path], log_path, threads)
    with open(metrics_path) as f:
        return json.load(f)


def read_adaptation_curves(work_dir):
    """``{iteration: {'adapt/realism': q, 'adapt/<diversity key>': d}}`` from the
    ``adaptation_curves.json`` an :class:`~catgen.engine.hooks.AdaptationCurveHook` wrote into
    ``work_dir`` (empty when there is none)."""
    path = osp.join(work_dir, 'adaptation_curves.json')
    if not osp.isfile(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    key = data['diversity_key']
    return {int(r['iter']): {'adapt/realism': float(r['realism']), f'adapt/{key}': float(r[key])}
            for r in data['records']}


def run_one(bench_cfg, run, log=print, threads=None):
    """Train (unless ``run.train`` is False) and evaluate ``run``; write ``run.json``. Returns the
    record (dict with strategy, shots, seed, metrics, train_s, test_s, and with curves
    ``curve``: ``{iteration: metrics}``). ``threads``: PyTorch threads of each subprocess
    (None: the tools' default)."""
    os.makedirs(run.work_dir, exist_ok=True)
    if run.reuse_from is not None:
        with open(osp.join(run.reuse_from, 'run.json')) as f:
            record = json.load(f)
        record.update(shots=run.shots, seed=run.seed, reused_from=run.reuse_from)
        write_text_atomic(run.record_path, json.dumps(record, indent=2) + '\n')
        return record
    cfg = build_run_config(bench_cfg, run)
    cfg_path = osp.join(run.work_dir, 'config.py')
    text = cfg.pretty_text
    write_text_atomic(cfg_path, text)
    log_path = osp.join(run.work_dir, 'benchmark.log')
    train_time_path = osp.join(run.work_dir, 'train_time.json')
    train_s = 0.0
    if osp.isfile(train_time_path):  # seconds spent in earlier (interrupted) attempts
        with open(train_time_path) as f:
            train_s = float(json.load(f)['train_s'])
    checkpoint = run.checkpoint
    iters = int(cfg.train_cfg.max_iters)  # the benchmark's budget for this run's batch size
    if run.train:
        checkpoint = osp.join(run.work_dir, f'iter_{iters}.pth')
        if not osp.isfile(checkpoint):
            resume = (['--resume'] if osp.isfile(osp.join(run.work_dir, 'last_checkpoint'))
                      else [])
            log(f'[{run.name}] training {iters} iterations ({run.config})')
            t0 = time.perf_counter()
            try:
                _call([_python(), 'tools/train.py', cfg_path, '--work-dir', run.work_dir] + resume,
                      log_path, threads)
            finally:
                train_s += time.perf_counter() - t0
                write_text_atomic(train_time_path, json.dumps(dict(train_s=train_s)) + '\n')
        if not osp.isfile(checkpoint):
            raise RuntimeError(f'[{run.name}] training ended without {checkpoint}; see {log_path}')
    metrics_path = osp.join(run.work_dir, 'metrics.json')
    log(f'[{run.name}] evaluating')
    t0 = time.perf_counter()
    metrics = _evaluate(cfg_path, checkpoint, run.work_dir, metrics_path, log_path, threads)
    curve = {}
    interval = int(cfg.get('benchmark_curve_interval', 0))
    if run.train and interval:
        for k in range(interval, iters, interval):
            path = osp.join(run.work_dir, 'curve', f'iter_{k}.json')
            if osp.isfile(path):  # evaluated by an interrupted earlier attempt
                with open(path) as f:
                    curve[k] = json.load(f)
                continue
            log(f'[{run.name}] evaluating iteration {k} (curve)')
            os.makedirs(osp.dirname(path), exist_ok=True)
            curve[k] = _evaluate(cfg_path, osp.join(run.work_dir, f'iter_{k}.pth'),
                                 osp.join(run.work_dir, 'curve'), path, log_path, threads)
        curve[iters] = metrics
    adaptation = read_adaptation_curves(run.work_dir) if run.train else {}
    if adaptation:  # written during training by the AdaptationCurveHook
        for k, point in adaptation.items():
            curve.setdefault(k, {}).update(point)
        metrics.update(adaptation[max(adaptation)])
        curve[iters] = metrics
    test_s = time.perf_counter() - t0
    record = dict(asdict(run), metrics=metrics, train_s=round(train_s, 1),
                  test_s=round(test_s, 1), finished=time.strftime('%Y-%m-%d %H:%M:%S'))
    if curve:  # keyed by the benchmark's iterations (of its reference batch size)
        ref = int(bench_cfg['iters']) / iters
        record['curve'] = {str(int(round(k * ref))): v for k, v in sorted(curve.items())}
    record.pop('options')
    write_text_atomic(run.record_path, json.dumps(record, indent=2) + '\n')
    log(f'[{run.name}] done: train {train_s:.0f} s, test {test_s:.0f} s')
    return record
