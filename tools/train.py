"""Train a catgen synthesizer: python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] ..."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a catgen synthesizer')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and samples')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the latest checkpoint in the work dir, or from the '
                             'given checkpoint path')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bf16 on CPU, fp16 with dynamic loss scaling on GPU')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--threads', type=int, default=None,
                        help='PyTorch threads (default: the cores available to this process)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args):
    from catgen.utils.config import apply_amp, load_config
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        apply_amp(cfg)
    if args.resume == 'auto':
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if not osp.isfile(last):
            raise FileNotFoundError(
                f'--resume: no checkpoint to resume from in {cfg.work_dir} (no last_checkpoint '
                'file). Drop --resume to start a new run, pass the checkpoint path '
                '(--resume PATH), or give the --work-dir of the run to continue.')
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(
                f'--resume {args.resume}: the checkpoint does not exist. Pass an iter_*.pth '
                f'written by tools/train.py, or --resume alone to continue from the work dir\'s '
                'last_checkpoint.')
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def prepare(argv=None):
    """Parse ``argv``, set up catgen's environment and the launcher: ``(args, cfg)``."""
    args = parse_args(argv)
    from catgen.utils.setup_env import set_threads, setup_env
    setup_env()
    set_threads(args.threads)
    from catgen.engine.distributed import setup_distributed
    cfg = build_cfg(args)
    transfer = cfg.model.get('transfer') or {}
    if transfer.get('type'):
        from catgen.registry import TRANSFER_STRATEGIES
        from catgen.utils.config import add_transfer_hook
        add_transfer_hook(cfg)
        if not getattr(TRANSFER_STRATEGIES.get(transfer['type']), 'requires_training', True):
            raise SystemExit(f'{args.config} uses {transfer["type"]}, which needs no training: '
                             f'evaluate it with `python tools/test.py {args.config} none` or '
                             f'generate with `python tools/synthesize.py {args.config} none ...`.')
    setup_distributed(cfg)
    return args, cfg


def runner_from_cfg(cfg):
    from catgen.engine.runner import build_runner
    return build_runner(cfg)


def build_runner(argv=None):
    """Parse ``argv``, set up catgen's environment and the launcher, build the Runner (no lock:
    :func:`main` holds the work dir's lock around building and training)."""
    return runner_from_cfg(prepare(argv)[1])


def check_start_checkpoint(runner, cfg):
    """Check the checkpoint a run starts from (``load_from`` or ``--resume``) before MMEngine
    reads it: catgen's safe loader (catgen's refusal of a malicious pickle) and a strict
    key/shape comparison with one readable message (MMEngine would only warn and train from
    partly random weights, or crash inside the optimizer on resume)."""
    import os.path as osp

    from catgen.models.synthesizers.base_synthesizer import unwrap
    from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load
    path = cfg.get('load_from', None)
    if cfg.get('resume', False) and not path:
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                path = f.read().strip()
    if not path:
        return
    state = read_state_dict(safe_load(path), what=f'checkpoint {path}')
    load_state_dict_checked(unwrap(runner.model), state, strict=True, source=path)


def main(argv=None):
    from catgen.utils.work_dir_lock import WorkDirLock
    args, cfg = prepare(argv)
    with WorkDirLock(cfg.work_dir, what='tools/train.py ' + args.config):
        runner = runner_from_cfg(cfg)
        check_start_checkpoint(runner, cfg)
        runner.train()
    return runner


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
