"""Evaluate a catgen synthesizer: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] ..."""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a catgen synthesizer')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file; "none" for a model that needs no '
                                           'trained weights (e.g. training-free CAT)')
    parser.add_argument('--work-dir', help='where to write logs and metrics')
    parser.add_argument('--out', help='metrics JSON path (default: <work_dir>/metrics.json)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_weights(model, checkpoint):
    """Load ``checkpoint``'s ``state_dict`` into ``model`` (unwrapped from DDP) strictly; the
    discriminator may be absent from the evaluated model (it is not needed to generate)."""
    from catgen.models.synthesizers.base_synthesizer import unwrap
    from catgen.utils.checkpoint import load_state_dict_checked, safe_load
    model = unwrap(model)
    ckpt = safe_load(checkpoint)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if getattr(model, 'discriminator', None) is None:
        state = {k: v for k, v in state.items() if not k.startswith('discriminator.')}
    load_state_dict_checked(model, state, strict=True, source=checkpoint)


def main(argv=None):
    args = parse_args(argv)
    from catgen.utils.setup_env import setup_env
    setup_env()
    from mmengine.runner import Runner

    from catgen.engine.distributed import setup_distributed
    from catgen.utils.config import load_config
    from catgen.utils.io import write_text_atomic
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist; pass the path '
                                'of a .pth written by tools/train.py (or "none").')
    # catgen loads the weights itself (weights_only, strict, one readable message on a mismatch)
    # instead of MMEngine's load_from, which only warns and would score a partly random model.
    cfg.load_from = None
    setup_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    if checkpoint is not None:
        load_weights(runner.model, checkpoint)
        runner.logger.info(f'loaded weights from {checkpoint}')
    metrics = runner.test()
    import json

    from mmengine.dist import is_main_process
    if is_main_process():
        out = args.out or osp.join(cfg.work_dir, 'metrics.json')
        write_text_atomic(out, json.dumps({k: float(v) if hasattr(v, '__float__') else v
                                           for k, v in metrics.items()}, indent=2) + '\n')
        print(f'metrics: {json.dumps(metrics, default=float)}')
        print(f'metrics written to {out}')
    return metrics


if __name__ == '__main__':
    main()
