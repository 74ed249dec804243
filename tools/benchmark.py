"""Run a comparative benchmark: python tools/benchmark.py BENCH_CONFIG [--work-dir DIR] ...

Trains and evaluates every run of the grid (strategies x shots x seeds, the same budget for all),
each in its own work dir, skipping finished runs (resumable: run it again after a crash or a kill),
then writes results.csv, results.md, checks.json and PNG plots into the benchmark's work dir.

    python tools/benchmark.py configs/benchmarks/synthscenes_transfer.py
    python tools/benchmark.py configs/benchmarks/synthscenes_transfer.py --report-only
    python tools/benchmark.py configs/benchmarks/synthscenes_transfer.py --jobs 2   # 2 cores
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Run a strategies x shots x seeds benchmark')
    parser.add_argument('config', help='benchmark config (configs/benchmarks/*.py)')
    parser.add_argument('--work-dir', help='override the benchmark config\'s work_dir')
    parser.add_argument('--only', nargs='+', help='run only these strategies')
    parser.add_argument('--dry-run', action='store_true', help='list the runs and their state')
    parser.add_argument('--report-only', action='store_true',
                        help='write the table and plots from the finished runs, run nothing')
    parser.add_argument('--keep-going', action='store_true',
                        help='go on with the next run when one fails (the report names it)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time, each with --threads (default 1 with --jobs > 1): '
                             'on 2 cores, 2 jobs of 1 thread do more per hour than 1 job of 2')
    parser.add_argument('--threads', type=int, default=None,
                        help='PyTorch threads of each training/evaluation subprocess (default: '
                             'the tools\' default with --jobs 1, else 1)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override benchmark config entries, e.g. iters=50 seeds=[0,1]')
    args = parser.parse_args(argv)
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        parser.error(f'--jobs and --threads must be >= 1, got {args.jobs} and {args.threads}')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    from catgen.benchmark import expand_grid, run_one, write_report
    from catgen.utils.config import check_config_file
    check_config_file(args.config)
    bench = Config.fromfile(args.config)
    bench.merge_from_dict(args.cfg_options)
    if args.work_dir:
        bench.work_dir = args.work_dir
    runs = expand_grid(bench, bench.work_dir, only=args.only)
    print(f'benchmark {args.config}: {len(runs)} runs '
          f'({sum(r.finished() for r in runs)} finished) in {bench.work_dir}')
    if args.dry_run:
        for r in runs:
            state = 'finished' if r.finished() else (
                f'reuses {osp.basename(r.reuse_from)}' if r.reuse_from else 'to run')
            print(f'  {r.name:40s} {r.config}  [{state}]')
        return runs
    failed = []
    t0 = time.perf_counter()
    threads = args.threads if args.threads is not None else (1 if args.jobs > 1 else None)
    if not args.report_only:
        todo = []
        for i, run in enumerate(runs):
            if run.finished():
                print(f'[{i + 1}/{len(runs)}] {run.name}: finished, skipped')
            else:
                todo.append((i, run))
        # seed by seed (every strategy and shot count of seed 0 first), so that a grid stopped
        # part-way has whole seeds to report; runs that copy another's result wait for it: they
        # go last, one at a time
        first = sorted([(i, r) for i, r in todo if r.reuse_from is None], key=lambda x: x[1].seed)
        later = [(i, r) for i, r in todo if r.reuse_from is not None]

        def one(item):
            i, run = item
            if run.finished():  # done meanwhile by another benchmark process on the same grid
                print(f'[{i + 1}/{len(runs)}] {run.name}: finished meanwhile, skipped', flush=True)
                return
            print(f'[{i + 1}/{len(runs)}] {run.name} '
                  f'({(time.perf_counter() - t0) / 60:.1f} min elapsed)', flush=True)
            try:
                run_one(bench, run, log=lambda msg: print('    ' + msg, flush=True),
                        threads=threads)
            except Exception as exc:  # noqa: BLE001 - reported, and re-raised unless --keep-going
                failed.append(run.name)
                if not args.keep_going:
                    raise
                print(f'    FAILED: {exc}', flush=True)

        if args.jobs > 1:
            from concurrent.futures import ThreadPoolExecutor
            pool = ThreadPoolExecutor(args.jobs)
            try:
                for future in [pool.submit(one, item) for item in first]:
                    future.result()
            finally:  # a failure (without --keep-going) starts nothing more
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for item in first:
                one(item)
        for item in later:
            one(item)
    print(f'benchmark wall time this call: {(time.perf_counter() - t0) / 60:.1f} min')
    report = write_report(runs, bench, bench.work_dir)
    print(report['markdown'])
    for name, path in report['paths'].items():
        print(f'{name}: {path}')
    if failed:
        raise SystemExit(f'{len(failed)} run(s) failed: {failed}')
    return report


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
