"""Environment set-up, safe checkpoint loading, compatibility shims and file helpers.

Names are resolved on first use, so ``import catgen.utils`` (and ``catgen.utils.io``) stays
cheap; torch and MMEngine load when a function that needs them is first looked up.

``catgen.utils.setup_env`` is both the module and the function: the module is callable
(``setup_env()`` runs :func:`catgen.utils.setup_env.setup_env`), so
``from catgen.utils import setup_env; setup_env()`` and
``catgen.utils.setup_env.register_all_modules()`` both work whatever was imported first.
"""
import importlib

_EXPORTS = {
    # checkpoint.py
    'install_safe_globals': 'checkpoint',
    'safe_globals': 'checkpoint',
    'safe_load': 'checkpoint',
    'load_state_dict_checked': 'checkpoint',
    'read_state_dict': 'checkpoint',
    'UnsafeCheckpointError': 'checkpoint',
    'CheckpointMismatchError': 'checkpoint',
    # mmcv_ops_compat.py
    'install_mmcv_ops_compat': 'mmcv_ops_compat',
    'is_compat_installed': 'mmcv_ops_compat',
    # setup_env.py
    'register_all_modules': 'setup_env',
    'setup_env': 'setup_env',
    'set_default_scope': 'setup_env',
    'guarded_default_scope': 'setup_env',
    'init_mmseg_model': 'setup_env',
    'set_threads': 'setup_env',
    'available_cores': 'setup_env',
    # work_dir_lock.py
    'WorkDirLock': 'work_dir_lock',
    'WorkDirLockedError': 'work_dir_lock',
    # io.py
    'atomic_write': 'io',
    'write_text_atomic': 'io',
    # cache.py
    'file_sha256': 'cache',
    'FileRef': 'cache',
    'cache_key': 'cache',
    'DiskCache': 'cache',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = importlib.import_module(f'{__name__}.{module}')
    if name != module:  # 'setup_env' is the (callable) module itself
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
