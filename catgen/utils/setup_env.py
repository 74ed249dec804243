"""Environment set-up: registries, MMEngine's default scope, safe loading, mmcv.ops shim.

* :func:`register_all_modules` imports every catgen package that registers components and (by
  default) makes ``catgen`` MMEngine's default scope.
* :func:`setup_env` is what entry points call first: checkpoint allowlist, pure-PyTorch
  ``mmcv.ops`` where the compiled one is missing, default scope ``catgen``. Idempotent.
* :func:`guarded_default_scope` undoes what code such as ``mmseg.apis.init_model`` (which switches
  the global default scope to ``mmseg``) does to MMEngine's ``DefaultScope``.
* :func:`init_mmseg_model` builds an mmsegmentation segmentor from local files only, inside the
  guard, and loads its weights through :func:`catgen.utils.checkpoint.safe_load`.
"""
import contextlib
import importlib
import itertools
import os
import sys
import types
from pathlib import Path

__all__ = ['register_all_modules', 'setup_env', 'set_default_scope', 'guarded_default_scope',
           'init_mmseg_model']

# Every package that registers components (the registries' ``locations``) or structures.
_PACKAGES = ('catgen.structures', 'catgen.models', 'catgen.datasets', 'catgen.datasets.transforms',
             'catgen.engine', 'catgen.evaluation', 'catgen.visualization', 'catgen.affinity',
             'catgen.pretrained', 'catgen.transfer')

_counter = itertools.count()


def register_all_modules(init_default_scope=True):
    """Import catgen's registering packages so that every component is in its registry.

    Heavy optional dependencies (mmsegmentation, timm, open_clip, lpips) are not imported: the
    components that need them import them when built.

    Args:
        init_default_scope: also make ``catgen`` MMEngine's current default scope, so that
            ``type='OASISGenerator'`` in a config resolves in catgen's registries.
    """
    for name in _PACKAGES:
        importlib.import_module(name)
    if init_default_scope:
        set_default_scope('catgen')


def set_default_scope(scope='catgen'):
    """Make ``scope`` MMEngine's current default scope; idempotent (no new instance if current).

    Returns the current :class:`mmengine.registry.DefaultScope`.
    """
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    if current is not None and current.scope_name == scope:
        return current
    existing = DefaultScope._instance_dict.get(scope)
    if existing is not None and existing.scope_name == scope:
        DefaultScope._instance_dict.move_to_end(scope)  # the last created is the current one
        return existing
    name = scope if existing is None else f'{scope}-catgen-{os.getpid()}-{next(_counter)}'
    return DefaultScope.get_instance(name, scope_name=scope)


def setup_env(init_default_scope=True):
    """Prepare the process for catgen; safe to call any number of times.

    * allowlist the globals MMEngine checkpoints need (:func:`~catgen.utils.checkpoint.
      install_safe_globals`), so that ``Runner.resume`` works on torch >= 2.6;
    * install the pure-PyTorch ``mmcv.ops`` when mmcv's compiled ops cannot be imported
      (:func:`~catgen.utils.mmcv_ops_compat.install_mmcv_ops_compat`);
    * make ``catgen`` the default scope (unless ``init_default_scope=False``).
    """
    from .checkpoint import install_safe_globals
    from .mmcv_ops_compat import install_mmcv_ops_compat
    install_safe_globals()
    install_mmcv_ops_compat()
    if init_default_scope:
        set_default_scope('catgen')


@contextlib.contextmanager
def guarded_default_scope(scope='catgen'):
    """Run a block that may switch MMEngine's default scope, then put it back.

    On entry ``scope`` (unless ``None``) is made the current default scope; on exit MMEngine's
    ``DefaultScope`` instances are restored exactly as they were before entry (same instances,
    same order, so the same current scope; instances made inside the block are dropped), also
    when the block raises.

    Example::

        with guarded_default_scope():
            model = mmseg.apis.init_model(cfg, device='cpu')   # switches to 'mmseg'
        # the default scope is what it was before (e.g. 'catgen')
    """
    from mmengine.registry import DefaultScope
    saved = list(DefaultScope._instance_dict.items())
    try:
        if scope is not None:
            set_default_scope(scope)
        yield
    finally:
        instances = DefaultScope._instance_dict
        instances.clear()
        instances.update(saved)


def init_mmseg_model(config, checkpoint, device='cpu', cfg_options=None, strict=True):
    """Build an mmsegmentation segmentor and load its weights safely, from local files only.

    ``mmseg.apis.init_model`` runs with ``checkpoint=None`` inside :func:`guarded_default_scope`
    (it switches the default scope to ``mmseg``); the weights are then read with
    :func:`~catgen.utils.checkpoint.safe_load` (``weights_only=True``) and loaded with
    :func:`~catgen.utils.checkpoint.load_state_dict_checked`, so a checkpoint of another
    architecture or class count fails with a message that lists keys and shapes.

    Args:
        config: path of an mmseg config file, or an :class:`mmengine.Config` / dict.
        checkpoint: path of the ``.pth`` file (an MMEngine checkpoint with ``state_dict``, or a
            bare state dict).
        device: where the model goes (``'cpu'``, ``'cuda:0'``).
        cfg_options: dict merged into the config, as in ``init_model``.
        strict: as :meth:`torch.nn.Module.load_state_dict`.

    Returns:
        The segmentor in eval mode, with ``dataset_meta`` (classes, palette) when the checkpoint
        carries it and ``cfg``.

    Raises:
        FileNotFoundError: the checkpoint (or config file) does not exist; says where to put it.
    """
    from catgen.model_zoo.zoo import resolve_checkpoint
    checkpoint = Path(resolve_checkpoint(checkpoint))
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f'mmsegmentation checkpoint not found: {checkpoint}. Nothing can be downloaded on '
            f'this machine: put the .pth file trained with config {_config_name(config)} at '
            f'{checkpoint.resolve()} (or pass its actual path).')
    if isinstance(config, (str, os.PathLike)) and not Path(config).is_file():
        raise FileNotFoundError(f'mmsegmentation config not found: {config}. Pass the path of '
                                f'the .py config the checkpoint {checkpoint} was trained with.')
    from mmengine.config import Config

    from .checkpoint import load_state_dict_checked, read_state_dict, safe_load
    setup_env(init_default_scope=False)
    if isinstance(config, dict) and not isinstance(config, Config):
        config = Config(config)
    with guarded_default_scope(None):
        from mmseg.apis import init_model
        model = init_model(config, checkpoint=None, device='cpu', cfg_options=cfg_options)
    ckpt = safe_load(checkpoint, map_location='cpu')
    state_dict = read_state_dict(ckpt, wrappers=('state_dict',),
                                 what=f'mmsegmentation checkpoint {checkpoint}')
    load_state_dict_checked(model, state_dict, strict=strict, source=str(checkpoint))
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    if isinstance(meta, dict) and meta.get('dataset_meta'):
        model.dataset_meta = meta['dataset_meta']
    elif isinstance(meta, dict) and 'CLASSES' in meta:  # mmseg 0.x checkpoints
        model.dataset_meta = {'classes': meta['CLASSES'], 'palette': meta.get('PALETTE')}
    model.to(device)
    model.eval()
    return model


def _config_name(config):
    if isinstance(config, (str, os.PathLike)):
        return str(config)
    filename = getattr(config, 'filename', None)
    return filename or 'the config you passed'


class _CallableModule(types.ModuleType):
    """This module, callable: ``catgen.utils.setup_env()`` runs :func:`setup_env`.

    ``catgen.utils.setup_env`` names both this module and its main function; Python's import
    system sets the package attribute to the module, so the module forwards calls.
    """

    def __call__(self, *args, **kwargs):
        return setup_env(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


def available_cores():
    """CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def set_threads(num_threads=None):
    """Use ``num_threads`` PyTorch intra-op threads (None: ``$OMP_NUM_THREADS`` when set, else
    the cores available to this process).

    PyTorch's default can exceed what a job should take: two jobs sharing 2 cores with default
    threads slow each other by an order of magnitude. The tools take ``--threads N``.

    Returns:
        the number of threads set.

    Raises:
        ValueError: ``num_threads`` < 1.
    """
    import torch
    if num_threads is None:
        env = os.environ.get('OMP_NUM_THREADS', '')
        num_threads = int(env) if env.isdigit() and int(env) > 0 else available_cores()
    n = int(num_threads)
    if n < 1:
        raise ValueError(f'--threads must be >= 1, got {num_threads}')
    torch.set_num_threads(n)
    return n
