"""Helpers that check and adjust configs before the Runner sees them."""
import os.path as osp


def check_config_file(path):
    """Fail early, with a useful message, on a config path that does not exist."""
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config file {path} does not exist. Configs live under configs/, e.g. '
            'configs/oasis/oasis_synthscenes-source.py; pass a path relative to the repository '
            'root or an absolute one.')


def apply_amp(cfg):
    """Switch every optimizer wrapper of ``cfg.optim_wrapper`` to mixed precision.

    A GAN config holds one wrapper per part (generator, discriminator); each becomes an
    :class:`~catgen.engine.optimizers.AutocastOptimWrapper` (bf16 on CPU, fp16 with dynamic
    loss scaling on GPU). A plain single-wrapper config is switched as a whole.
    """
    ow = cfg.optim_wrapper
    parts = [k for k, v in ow.items() if isinstance(v, dict) and 'optimizer' in v]
    targets = [ow[k] for k in parts] if parts else [ow]
    for target in targets:
        if target.get('type', 'OptimWrapper') in ('OptimWrapper', 'AutocastOptimWrapper'):
            target['type'] = 'AutocastOptimWrapper'
            target.setdefault('dtype', 'auto')
        else:
            raise ValueError(f'--amp: cannot switch optim wrapper type {target["type"]!r} to '
                             'mixed precision; use OptimWrapper in the config.')
    return cfg


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    """Load a config as the tools do: check the file, merge ``--cfg-options``, set the launcher
    and the work dir (``work_dirs/<config name>`` unless given here or in the config)."""
    from mmengine.config import Config
    check_config_file(path)
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
