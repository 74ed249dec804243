"""The main job on SynthScenes (`make demo`): few-shot transfer with CAT, on a fresh machine, no
download, 2 CPU cores, a few minutes.

1. prepare SynthScenes in data/synthscenes (skipped when complete);
2. the source model: catgen's model-zoo OASIS trained on the SynthScenes source domain
   (``zoo://oasis_synthscenes-source``, shipped with catgen; docs/model_zoo.md), or, with
   ``--retrain-source``, the same config trained here from scratch (hours on 2 CPU cores);
3. estimate the class affinity target x source from class-name text embeddings (offline) with
   tools/estimate_affinity.py: matrix, heatmap, accuracy against SynthScenes' true matrix;
4. finetune-all and CAT on the same 100 target images, the same budget (``--iters``, 200 by
   default: the budget of every SynthScenes transfer config), each with tools/train.py;
5. evaluate training-free CAT (no training), finetune-all and CAT on the 500 target val label
   maps with tools/test.py: mIoU by the target segmenter (real images: 98.8), FID in its
   feature space, per-class colour distance;
6. a comparison grid (label map | training-free CAT | finetune | CAT | real) and the table.

Every step is a separate command printed with `+`; rerun the demo to reuse what exists (delete a
work dir to redo its step). Everything goes under work_dirs/demo/.
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

DATA = 'data/synthscenes'
OUT = 'work_dirs/demo'
SOURCE_CFG = 'configs/oasis/oasis_synthscenes-source.py'
SOURCE_ZOO = 'zoo://oasis_synthscenes-source'
FINETUNE_CFG = 'configs/finetune-all/oasis_synthscenes_100.py'
CAT_CFG = 'configs/cat/oasis_synthscenes_100.py'
FREE_CFG = 'configs/cat/oasis_synthscenes-training-free.py'
NUM_GRID = 8
# the table: metric key in metrics.json, its name, and whether lower is better
METRICS = [('seg/mIoU', 'mIoU', False),
           ('fid_seg-fcn_synthscenes-target', 'FID (segmenter features)', True),
           ('color/mean_dist', 'colour distance', True),
           ('spectrum/axis_excess_db', 'stripes, dB over real', True)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--iters', type=int, default=200,
                   help='training iterations of finetune-all and CAT (batch 8; default 200)')
    p.add_argument('--retrain-source', action='store_true',
                   help=f'train the source model from scratch with {SOURCE_CFG} instead of '
                        f'using {SOURCE_ZOO} (hours on 2 CPU cores)')
    p.add_argument('--threads', type=int, default=None,
                   help='PyTorch threads of each step; default: with 2 or more cores, the two '
                        'trainings (and the evaluations) run side by side with one thread each')
    p.add_argument('--out', default=OUT, help=f'where everything goes (default {OUT})')
    args = p.parse_args(argv)
    if args.iters <= 0:
        p.error(f'--iters must be positive, got {args.iters}')
    return args


def run(cmd):
    print('+ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f'  ({time.time() - t0:.0f} s)', flush=True)


def last_progress(log):
    """The last ``Iter(...) [i/n]`` of a log file, or ''."""
    try:
        with open(log, errors='replace') as f:
            found = re.findall(r'Iter\((?:train|val|test)\) *\[ *\d+/\d+\]', f.read())
    except OSError:
        return ''
    return found[-1] if found else ''


def run_parallel(jobs):
    """Run ``(name, cmd, log)`` jobs at once (one thread each), console to their logs; print
    their progress every 15 s; raise naming the log of a job that failed."""
    t0 = time.time()
    procs = []
    for name, cmd, log in jobs:
        os.makedirs(osp.dirname(log), exist_ok=True)
        print(f'+ {" ".join(cmd)} > {log}', flush=True)
        procs.append((name, subprocess.Popen(cmd, cwd=ROOT, stdout=open(log, 'w'),
                                             stderr=subprocess.STDOUT), log))
    report = t0 + 15
    while any(p.poll() is None for _, p, _ in procs):
        time.sleep(1)
        if time.time() >= report:
            report += 15
            print('  ' + '; '.join(f'{name}: {"done" if p.poll() == 0 else last_progress(log)}'
                                   for name, p, log in procs), flush=True)
    failed = [(name, log) for name, p, log in procs if p.returncode != 0]
    if failed:
        raise SystemExit('demo step failed: ' + ', '.join(f'{name} (see {log})'
                                                           for name, log in failed))
    print(f'  ({time.time() - t0:.0f} s)', flush=True)


def threads(args):
    return ['--threads', str(args.threads)] if args.threads else []


def parallel(args):
    """Run the two trainings (and the three evaluations) side by side, one thread each: on 2
    cores that beats one 2-thread job after the other (small convolutions scale poorly)."""
    from catgen.utils.setup_env import available_cores
    return args.threads in (None, 1) and available_cores() >= 2


def source_checkpoint(py, args):
    """The zoo model, or the final checkpoint of the source config trained here."""
    if not args.retrain_source:
        return SOURCE_ZOO
    from mmengine.config import Config
    work_dir = osp.join(args.out, 'source')
    ckpt = osp.join(work_dir, f'iter_{Config.fromfile(SOURCE_CFG).train_cfg.max_iters}.pth')
    if not osp.isfile(ckpt):
        resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
        run([py, 'tools/train.py', SOURCE_CFG, '--work-dir', work_dir, *resume, *threads(args)])
    return ckpt


def train_cmd(py, cfg, work_dir, options, args, threads_arg):
    """tools/train.py of ``cfg`` for ``--iters`` iterations, or None when its final checkpoint
    exists."""
    if osp.isfile(osp.join(work_dir, f'iter_{args.iters}.pth')):
        print(f'found {work_dir}/iter_{args.iters}.pth (delete {work_dir} to retrain)')
        return None
    resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
    return [py, 'tools/train.py', cfg, '--work-dir', work_dir, *resume, *threads_arg,
            '--cfg-options', *options, f'train_cfg.max_iters={args.iters}',
            f'train_cfg.val_interval={args.iters}',
            f'default_hooks.checkpoint.interval={args.iters}',
            f'custom_hooks.0.interval={args.iters}']


def test_cmd(py, cfg, ckpt, work_dir, options, threads_arg):
    """tools/test.py (mIoU, FID, colour distance on the target val maps), or None when done."""
    if osp.isfile(osp.join(work_dir, 'metrics.json')):
        return None
    return [py, 'tools/test.py', cfg, ckpt, '--work-dir', work_dir, *threads_arg,
            '--cfg-options', *options]


def run_steps(jobs, side_by_side):
    """``(name, cmd, log)`` jobs (``cmd`` None: already done), side by side or in turn."""
    jobs = [job for job in jobs if job[1] is not None]
    if side_by_side and len(jobs) > 1:
        run_parallel(jobs)
    else:
        for _, cmd, _ in jobs:
            run(cmd)


def comparison_grid(rows, out_path):
    """label map | one row per ``(name, config, checkpoint, cfg options)`` | real, for the first
    target val maps."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from catgen.apis import dataset_sample_grid, init_synthesizer
    from catgen.registry import DATASETS
    from catgen.utils.cfg_options_action import parse_option_value

    def parsed(options):
        return {k: parse_option_value(k, v) for k, v in (o.split('=', 1) for o in options)}

    MMLogger.get_current_instance().setLevel('WARNING')  # the runs' logs already said it all
    models = [(name, init_synthesizer(cfg, ckpt, cfg_options=parsed(opts)))
              for name, cfg, ckpt, opts in rows]
    dataset = DATASETS.build(Config.fromfile(CAT_CFG).test_dataloader.dataset)
    dataset_sample_grid(models, dataset, out=out_path, num_maps=NUM_GRID, scale=2)
    return out_path


def table(results):
    """Markdown table, one row per model, the best value of each column in bold."""
    head = '| | ' + ' | '.join(f'{name} {"(lower is better)" if low else "(higher is better)"}'
                                for _, name, low in METRICS) + ' |'
    lines = [head, '|---' * (len(METRICS) + 1) + '|']
    best = {}
    for key, _, low in METRICS:
        values = [m[key] for m in results.values() if isinstance(m.get(key), (int, float))]
        best[key] = (min if low else max)(values) if values else None
    for name, metrics in results.items():
        cells = []
        for key, _, _ in METRICS:
            value = metrics.get(key)
            text = f'{value:.2f}' if isinstance(value, (int, float)) else 'n/a'
            cells.append(f'**{text}**' if value is not None and value == best[key] else text)
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    os.chdir(ROOT)
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    py = sys.executable
    run([py, 'tools/prepare_synthscenes.py', '--out', DATA])
    source = source_checkpoint(py, args)
    affinity_dir = osp.join(args.out, 'affinity')
    affinity = osp.join(affinity_dir, 'affinity.json')
    if not osp.isfile(affinity):
        run([py, 'tools/estimate_affinity.py', '--estimator', 'text', '--synthscenes', DATA,
             '--out', affinity_dir])
    t_ready = time.time()
    # every run starts from the same source model; both CAT runs read the estimated matrix
    source_opts = [f'model.transfer.source_checkpoint={source}']
    cat_opts = source_opts + ['model.transfer.affinity=None',
                              f'model.transfer.affinity_file={affinity}']
    finetune_dir = osp.join(args.out, 'finetune-all_100')
    cat_dir = osp.join(args.out, 'cat_100')
    side_by_side = parallel(args)
    each = ['--threads', '1'] if side_by_side else threads(args)
    run_steps([('finetune-all', train_cmd(py, FINETUNE_CFG, finetune_dir, source_opts, args, each),
                osp.join(finetune_dir, 'console.log')),
               ('CAT', train_cmd(py, CAT_CFG, cat_dir, cat_opts, args, each),
                osp.join(cat_dir, 'console.log'))], side_by_side)
    finetune_ckpt = osp.join(finetune_dir, f'iter_{args.iters}.pth')
    cat_ckpt = osp.join(cat_dir, f'iter_{args.iters}.pth')
    t_trained = time.time()

    rows = [('training-free CAT', FREE_CFG, None, cat_opts,
             osp.join(args.out, 'cat_training-free')),
            ('finetune-all, 100 images', FINETUNE_CFG, finetune_ckpt, source_opts, finetune_dir),
            ('CAT, 100 images', CAT_CFG, cat_ckpt, cat_opts, cat_dir)]
    run_steps([(name, test_cmd(py, cfg, ckpt or 'none', osp.join(work_dir, 'test'), opts, each),
                osp.join(work_dir, 'test', 'console.log'))
               for name, cfg, ckpt, opts, work_dir in rows], side_by_side)
    results = {}
    for name, _, _, _, work_dir in rows:
        with open(osp.join(work_dir, 'test', 'metrics.json')) as f:
            results[name] = json.load(f)
    grid = osp.join(args.out, 'comparison.png')
    print(f'+ comparison grid -> {grid}', flush=True)
    comparison_grid([(name, cfg, ckpt, opts) for name, cfg, ckpt, opts, _ in rows], grid)
    report = table(results)
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(report + '\n')

    total = time.time() - t0
    print(f'\n=== catgen demo done in {total / 60:.1f} min (data + source + affinity '
          f'{(t_ready - t0) / 60:.1f}, training {(t_trained - t_ready) / 60:.1f}, evaluation and '
          f'grid {(time.time() - t_trained) / 60:.1f}) ===')
    print(f'source model:      {source}')
    print(f'affinity (text):   {affinity}, heatmap {affinity_dir}/affinity.png, accuracy '
          f'{affinity_dir}/affinity_accuracy.json')
    print(f'runs:              {finetune_dir}/, {cat_dir}/ ({args.iters} iterations of batch 8 '
          f'each)')
    print(f'comparison grid:   {grid}  (rows: label map | training-free CAT | finetune-all | '
          f'CAT | real)')
    print(f'\nSynthScenes target val (500 label maps), {osp.join(args.out, "results.md")}:')
    print(report)
    with open(osp.join(args.out, 'timing.json'), 'w') as f:
        json.dump({'total_s': round(total, 1), 'setup_s': round(t_ready - t0, 1),
                   'training_s': round(t_trained - t_ready, 1),
                   'evaluation_s': round(time.time() - t_trained, 1), 'iters': args.iters,
                   'source': source}, f, indent=2)


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
