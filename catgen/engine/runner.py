"""CatgenRunner: MMEngine's Runner with a console a researcher can read.

MMEngine logs the full config (hundreds of lines), the system environment and the table of hooks
to the console and to the log file. With ``runner_type = 'CatgenRunner'``
(``configs/_base_/default_runtime.py``) those records, and MMEngine's own deprecation notices,
go to the log file only; the console shows a few-line summary of the config, then progress and
metrics. Nothing is lost: ``<work_dir>/<timestamp>/<timestamp>.log`` has everything.
"""
import logging
import os.path as osp

from mmengine.runner import Runner

from catgen.registry import RUNNERS

__all__ = ['CatgenRunner', 'FileOnlyFilter', 'config_summary', 'build_runner']


class FileOnlyFilter(logging.Filter):
    """Keeps long or internal records off the console (they still reach the log file)."""

    #: beginnings of messages that are for the log file only
    PREFIXES = ('Config:', 'Hooks will be executed', 'Distributed training is not used',
                '"FileClient" will be deprecated', '"HardDiskBackend" is the alias',
                '`save_param_scheduler` is True', '`resume_param_scheduler` is True',
                'The prefix is not set in metric class')

    def filter(self, record):
        message = record.getMessage().lstrip('\n-')
        if message.startswith(self.PREFIXES) or message.lstrip().startswith(
                ('System environment', 'Runtime environment')):
            return False
        return True


def _type(cfg):
    return cfg.get('type', '?') if isinstance(cfg, dict) else type(cfg).__name__


def config_summary(cfg, log_file=None):
    """A few lines on what runs: config, work dir, model parts, data and schedule."""
    model = cfg.get('model', {})
    parts = [f'model {_type(model)}']
    for key in ('generator', 'discriminator'):
        if isinstance(model.get(key), dict):
            inner = model[key].get('generator')
            parts.append(f'{key} {_type(model[key])}'
                         + (f'({_type(inner)})' if isinstance(inner, dict) else ''))
    if isinstance(model.get('transfer'), dict):
        parts.append(f'transfer {_type(model["transfer"])}')
    lines = [f'config {osp.relpath(cfg.filename) if cfg.filename else "(in memory)"} -> '
             f'work dir {cfg.work_dir}', ', '.join(parts)]
    loader = cfg.get('train_dataloader') or {}
    ds = loader.get('dataset', {}) if isinstance(loader, dict) else {}
    if ds:
        what = [str(ds.get(k)) for k in ('domain', 'split') if ds.get(k) is not None]
        shots = ds.get('num_shots')
        lines.append(f'train data {_type(ds)} {" ".join(what)} ({ds.get("data_root", "")})'
                     + (f', {shots} shots' if shots not in (None, -1) else '')
                     + f', batch {loader.get("batch_size")}')
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('max_iters'):
        lines.append(f'{train_cfg["max_iters"]} iterations, validation every '
                     f'{train_cfg.get("val_interval")}, seed '
                     f'{(cfg.get("randomness") or {}).get("seed")}')
    if log_file:
        lines.append(f'full config, environment and hook order: {log_file}')
    return '\n'.join(lines)


@RUNNERS.register_module()
class CatgenRunner(Runner):
    """MMEngine's :class:`~mmengine.runner.Runner`; the console gets a config summary instead of
    the full config, environment and hook table (see the module docstring). Same arguments."""

    def build_logger(self, log_level='INFO', log_file=None, **kwargs):
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and not any(
                    isinstance(f, FileOnlyFilter) for f in handler.filters):
                handler.addFilter(FileOnlyFilter())
        return logger

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        log_file = next((h.baseFilename for h in self.logger.handlers
                         if isinstance(h, logging.FileHandler)), None)
        self.logger.info('\n' + config_summary(self.cfg, log_file))


def build_runner(cfg):
    """The Runner of ``cfg``: ``RUNNERS.build`` when it names a ``runner_type``, else MMEngine's
    :meth:`Runner.from_cfg`."""
    if cfg.get('runner_type'):
        from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
        return MMENGINE_RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
