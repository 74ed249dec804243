"""Evaluate a catgen synthesizer: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] ..."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a catgen synthesizer')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file; "none" for a model that needs no '
                                           'trained weights (training-free CAT); "random" for '
                                           'the untrained model as built (a floor)')
    parser.add_argument('--work-dir', help='where to write logs and metrics')
    parser.add_argument('--out', help='metrics JSON path (default: <work_dir>/metrics.json)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--threads', type=int, default=None,
                        help='PyTorch threads (default: the cores available to this process)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from catgen.apis import evaluate
    from catgen.utils.setup_env import set_threads
    set_threads(args.threads)
    checkpoint = {'none': None, 'random': 'random'}.get(args.checkpoint.lower(), args.checkpoint)
    return evaluate(args.config, checkpoint, work_dir=args.work_dir, out=args.out,
                    cfg_options=args.cfg_options, launcher=args.launcher)


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
