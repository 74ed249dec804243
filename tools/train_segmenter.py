"""Train an mmsegmentation segmenter with catgen's environment (mmseg's own tools/train.py is not
installed with the package).

    python tools/train_segmenter.py configs/segmenters/fcn_synthscenes-source.py
    python tools/train_segmenter.py CONFIG --work-dir DIR --cfg-options train_cfg.max_iters=100

The config is a plain mmsegmentation config (``default_scope = 'mmseg'``, mmseg model zoo classes
and transforms). catgen's :func:`~catgen.utils.setup_env.setup_env` runs first: it installs the
pure-PyTorch ``mmcv.ops`` where mmcv's compiled ops are missing (mmseg imports them) and the
checkpoint allowlist that ``--resume`` needs on torch >= 2.6. Then MMEngine's ``Runner`` trains,
validates (mIoU) and writes checkpoints (with ``meta.dataset_meta``: the class names, which
:func:`catgen.utils.setup_env.init_mmseg_model` and ``SegmenterAffinity`` read) to the work dir
(default ``work_dirs/segmenters/<config name>``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train an mmsegmentation segmenter (catgen env).')
    p.add_argument('config', help='mmseg config file, e.g. configs/segmenters/'
                   'fcn_synthscenes-source.py')
    p.add_argument('--work-dir', help='where logs and checkpoints go (default: the config\'s '
                   'work_dir, else work_dirs/segmenters/<config name>)')
    p.add_argument('--resume', nargs='?', const='auto',
                   help='resume from the latest checkpoint in the work dir, or from the given one')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   help='override config entries, e.g. train_cfg.max_iters=100')
    return p.parse_args(argv)


def check_classes(cfg):
    """The decode head's num_classes must equal the number of class names in the data sets'
    metainfo (mmseg would otherwise train silently with a wrong label space)."""
    n = cfg.model.get('decode_head', {}).get('num_classes')
    for key in ('train_dataloader', 'val_dataloader'):
        ds = cfg.get(key, {}).get('dataset', {}) if cfg.get(key) else {}
        classes = (ds.get('metainfo') or {}).get('classes')
        if classes is not None and n is not None and len(classes) != n:
            raise ValueError(
                f'{cfg.filename}: model.decode_head.num_classes={n} but {key}.dataset.metainfo '
                f'has {len(classes)} classes ({list(classes)[:5]} ...). They must agree: one '
                f'output per real class (on-disk ids 0..N-1, 255 = ignore).')


def build_cfg(args):
    from mmengine.config import Config
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config file {args.config} does not exist; pass an mmseg config '
                                f'such as configs/segmenters/fcn_synthscenes-source.py.')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if cfg.get('default_scope') != 'mmseg':
        raise ValueError(f"{args.config} has default_scope={cfg.get('default_scope')!r}; a "
                         f"segmenter config must set default_scope = 'mmseg' (mmseg model zoo "
                         f"classes and transforms). Synthesizers train with tools/train.py.")
    check_classes(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', 'segmenters',
                                osp.splitext(osp.basename(args.config))[0])
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    cfg.setdefault('launcher', 'none')
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from catgen.utils.setup_env import setup_env
    setup_env(init_default_scope=False)
    cfg = build_cfg(args)
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
