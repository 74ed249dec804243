"""Helpers that check and adjust configs before the Runner sees them."""
import ast
import difflib
import inspect
import os.path as osp
import re


def check_config_file(path):
    """Fail early, with a useful message, on a config path that does not exist or does not parse.

    Raises:
        FileNotFoundError: no file at ``path``.
        SyntaxError: the file is not valid Python (the message names the file, line and column).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'config file {path} does not exist. Configs live under configs/, e.g. '
            'configs/oasis/oasis_synthscenes-source.py; pass a path relative to the repository '
            'root or an absolute one.')
    with open(path, encoding='utf-8') as f:
        source = f.read()
    try:
        ast.parse(source, filename=path)
    except SyntaxError as err:
        raise _config_syntax_error(path, err) from err


def _config_syntax_error(path, err, via=None):
    where = f'line {err.lineno}' + (f', column {err.offset}' if err.offset else '')
    text = (err.text or '').rstrip('\n')
    shown = f'\n    {text}' if text.strip() else ''
    base = f' (a _base_ of {via})' if via else ''
    return SyntaxError(
        f'config file {path}{base} is not valid Python: {err.msg} at {where}.{shown}\nA config '
        'is a Python file of assignments (e.g. model = dict(type=...)): fix the syntax there (an '
        'unclosed bracket or quote, a missing comma between entries) and run again.')


def _broken_base(path, seen=None):
    """``(file, SyntaxError)`` of the first ``_base_`` file (recursively) that does not parse,
    or None. Only plain string / list-of-strings ``_base_`` paths are followed."""
    seen = set() if seen is None else seen
    path = osp.abspath(path)
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    try:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
    except SyntaxError as err:
        return path, err
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                return None
            for base in [bases] if isinstance(bases, str) else list(bases):
                found = _broken_base(osp.join(osp.dirname(path), str(base)), seen)
                if found is not None:
                    return found
    return None


def _custom_import_error(path, err):
    cause = err.__cause__ if err.__cause__ is not None else err
    missing = getattr(cause, 'name', None)
    if not missing:  # MMEngine words it "Failed to import <module>"
        match = re.search(r'Failed to import (\S+)', str(cause))
        missing = match.group(1) if match else None
    what = f"module '{missing}'" if missing else 'a module'
    return ImportError(
        f'config file {path} (or one of its _base_ files) lists {what} in custom_imports, and it '
        f'cannot be imported ({type(cause).__name__}: {cause}). What to do: install the plugin '
        '(e.g. pip install -e path/to/plugin), or add the folder that holds it to PYTHONPATH, or '
        'fix the module name in custom_imports=dict(imports=[...]); see docs/plugins.md.')


def _lookup(node, part):
    """``(exists, child)`` for one dotted-key component in a config dict or list."""
    if isinstance(node, dict):
        return (part in node), node.get(part)
    if isinstance(node, (list, tuple)) and part.isdigit():
        index = int(part)
        return (index < len(node)), (node[index] if index < len(node) else None)
    return False, None


def _resolve_type(name):
    """The class (or function) a config ``type`` names in catgen's or MMEngine's registries, or
    None when no registry knows it (or several know different things under that name)."""
    import mmengine.runner  # noqa: F401  (registers MMEngine's loops, hooks, optimizers ...)

    import catgen.registry as registry
    found = set()
    for reg in vars(registry).values():
        if not isinstance(reg, registry.Registry):
            continue
        try:
            obj = reg.get(name)
        except Exception:  # noqa: BLE001  (unknown key, or a location that cannot import)
            obj = None
        if obj is not None:
            found.add(obj)
    return found.pop() if len(found) == 1 else None


def _accepted_args(obj):
    """``(names, open_ended)``: the keyword arguments ``obj`` (a class or function) takes, and
    whether it also takes ``**kwargs`` (then the names gathered along the MRO are only a hint)."""
    funcs = [c.__init__ for c in inspect.getmro(obj) if '__init__' in vars(c)] \
        if inspect.isclass(obj) else [obj]
    names, open_ended = set(), False
    for func in funcs:
        try:
            params = inspect.signature(func).parameters.values()
        except (TypeError, ValueError):
            return names, True
        names.update(p.name for p in params
                     if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != 'self')
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names, open_ended
        open_ended = True
    return names, open_ended


def check_cfg_options(cfg, cfg_options, path='the config'):
    """Refuse ``--cfg-options`` keys that look like typos, before anything runs.

    A key whose every component already exists in ``cfg`` is fine (it overrides a value). For
    the first component that is new, the dict it would be added to is examined:

    * when that dict has a ``type`` that catgen's or MMEngine's registries know and whose
      constructor takes no ``**kwargs``, the new key must be one of its arguments;
    * otherwise the new key must not be a near-miss (``difflib`` ratio >= 0.8) of an existing key
      or a known argument, e.g. ``max_iter`` next to ``max_iters``.

    Args:
        cfg: the loaded :class:`mmengine.Config`, before the options are merged.
        cfg_options: ``dict`` of dotted keys to values (as ``DictAction`` parses them).
        path: the config file, for the message.

    Options that would change nothing or break later are refused too:

    * a top-level plain value that only the config file itself reads while it is parsed
      (``num_shots=25``, ``data_root=...``): overriding it afterwards changes nothing;
    * a text value for a field whose value is a number (``train_cfg.max_iters=abc``);
    * ``max_iters`` / ``val_interval`` / ``interval`` of zero or less.

    Raises:
        ValueError: naming the key, what the dict accepts (closest names first) and what to do.
    """
    root = cfg if isinstance(cfg, dict) else cfg.to_dict()  # an mmengine Config is no dict
    for key, value in cfg_options.items():
        parts = str(key).split('.')
        node = root
        for depth, part in enumerate(parts):
            exists, child = _lookup(node, part)
            if not exists:
                if isinstance(node, dict):
                    _check_new_key(node, part, key, '.'.join(parts[:depth]), path)
                break
            node = child
        else:
            _check_existing_value(parts, node, key, value, path)


#: top-level config keys that MMEngine's Runner or catgen's tools read after parsing
_RUNTIME_KEYS = {'launcher', 'resume', 'load_from', 'work_dir', 'sync_bn', 'runner_type',
                 'custom_imports', 'num_eval_samples'}
#: fields that must be positive
_POSITIVE = {'max_iters', 'max_epochs', 'val_interval', 'interval', 'batch_size'}


def _runner_keys():
    import inspect

    from mmengine.runner import Runner
    return set(inspect.signature(Runner.__init__).parameters) | _RUNTIME_KEYS


def _check_existing_value(parts, old, key, value, path):
    if len(parts) == 1 and not isinstance(old, (dict, list, tuple)) and \
            parts[0] not in _runner_keys():
        raise ValueError(
            f'--cfg-options {key}={value}: {parts[0]!r} is a variable of {path} that the file '
            f'itself reads while it is parsed (e.g. into the data set or the model); '
            f'overriding it afterwards changes nothing. Set the field that uses it instead, e.g. '
            f'train_dataloader.dataset.{parts[0]}=... (look it up in {path} and its _base_ files).')
    numeric = isinstance(old, (int, float)) and not isinstance(old, bool)
    if numeric and isinstance(value, str):
        raise ValueError(f'--cfg-options {key}={value!r}: {key} is a number in {path} '
                         f'({old!r}); give a number.')
    if parts[-1] in _POSITIVE and isinstance(value, (int, float)) and value <= 0:
        raise ValueError(f'--cfg-options {key}={value}: {parts[-1]} must be positive; a run '
                         f'with it would do nothing (or fail later).')


def _check_new_key(parent, name, key, where, path):
    siblings = sorted(k for k in parent if isinstance(k, str))
    type_name = parent.get('type') if isinstance(parent.get('type'), str) else None
    obj = _resolve_type(type_name) if type_name else None
    args, open_ended = _accepted_args(obj) if obj is not None else (set(), True)
    if obj is not None and not open_ended:
        if name in args:
            return
        candidates = sorted(args | (set(siblings) - {'type'}))
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        accepted = ', '.join(sorted(args)) or 'no arguments'
        reason = (f'{type_name} takes no argument {name!r} (its arguments: {accepted})')
    else:
        if name in args:
            return
        candidates = sorted(args | set(siblings))
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.8)
        if not close:
            return  # a genuinely new key: MMEngine adds it
        reason = f'{where or "the config"} has no key {name!r}'
    hint = f' Did you mean {" or ".join(repr(c) for c in close)}?' if close else ''
    target = where + '.' if where else ''
    raise ValueError(
        f'--cfg-options {key}: {reason}.{hint} Such a key is added to the config as a new '
        f'entry, which nothing reads or which fails later, after the set-up. What to do: fix '
        f'the spelling (e.g. --cfg-options {target}{close[0] if close else "<key>"}=...), or '
        f'look the key names up in {path} and its _base_ files.')


def apply_amp(cfg):
    """Switch every optimizer wrapper of ``cfg.optim_wrapper`` to mixed precision.

    A GAN config holds one wrapper per part (generator, discriminator); each is switched. With
    CUDA, MMEngine's own ``AmpOptimWrapper`` (fp16 autocast with dynamic loss scaling); without,
    catgen's :class:`~catgen.engine.optimizers.AutocastOptimWrapper` in bf16 (MMEngine's
    wrapper asserts a GPU). A plain single-wrapper config is switched as a whole.
    """
    import torch
    ow = cfg.optim_wrapper
    parts = [k for k, v in ow.items() if isinstance(v, dict) and 'optimizer' in v]
    targets = [ow[k] for k in parts] if parts else [ow]
    for target in targets:
        kind = target.get('type', 'OptimWrapper')
        if kind not in ('OptimWrapper', 'AutocastOptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(f'--amp: cannot switch optim wrapper type {kind!r} to '
                             'mixed precision; use OptimWrapper in the config.')
        if kind == 'OptimWrapper':
            if torch.cuda.is_available():
                target['type'] = 'AmpOptimWrapper'
                target.setdefault('loss_scale', 'dynamic')
            else:
                target['type'] = 'AutocastOptimWrapper'
                target.setdefault('dtype', 'auto')
    return cfg


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    """Load a config as the tools do: check the file, merge ``--cfg-options``, set the launcher
    and the work dir (``work_dirs/<config name>`` unless given here or in the config).

    Raises:
        FileNotFoundError: no config file at ``path``.
        SyntaxError: the file (or one of its ``_base_`` files) is not valid Python.
        ImportError: a module of its ``custom_imports`` cannot be imported.
        ValueError: a ``cfg_options`` key looks like a typo (see :func:`check_cfg_options`).
    """
    from mmengine.config import Config
    check_config_file(path)
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        broken = _broken_base(path)
        if broken is not None:
            raise _config_syntax_error(*broken, via=path) from err
        raise SyntaxError(f'config file {path} or one of its _base_ files is not valid Python: '
                          f'{err}. Fix the syntax there and run again.') from err
    except ImportError as err:
        if 'custom modules' not in str(err):
            raise
        raise _custom_import_error(path, err) from err
    cfg.launcher = launcher
    if cfg_options:
        check_cfg_options(cfg, cfg_options, path)
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    fill_num_classes(cfg)
    return cfg


def dataset_num_classes(dataset_cfg):
    """The label channels (don't care included) of a data set config, from its classes, or
    None for a config that is not a catgen data set (a wrapper, a foreign type).

    Raises:
        FileNotFoundError: the data set reads its classes from its files and they are missing
            (the data set's own message: what goes where).
    """
    from catgen.datasets.class_names import class_names_of
    if not isinstance(dataset_cfg, dict) or not isinstance(dataset_cfg.get('type'), str):
        return None
    try:
        names = class_names_of(dict(dataset_cfg))
    except (KeyError, TypeError, ValueError):
        return None
    return len(names) if names else None


def fill_num_classes(cfg):
    """Write the class count once: fill in what the config leaves out.

    - ``model.data_preprocessor.num_classes``: when absent, the training set's (else the test
      set's) class count, don't care included (``len(metainfo['classes'])``);
    - the generator and discriminator take the preprocessor's when their config has none (done
      by the synthesizer when it builds them);
    - every val/test evaluator entry whose class takes ``num_classes`` and whose config has none
      gets the preprocessor's.

    - ``model.transfer.target_dataset`` (CAT: the target class names, and the images for
      estimators that need them): when the strategy takes one and the config has none, the
      training set (without its pipeline).

    An explicit value is never changed.
    """
    model = cfg.get('model', None)
    if not isinstance(model, dict):
        return cfg
    transfer = model.get('transfer', None)
    train_ds = (cfg.get('train_dataloader', None) or {}).get('dataset', None)
    if isinstance(transfer, dict) and isinstance(transfer.get('type'), str) and \
            transfer.get('target_dataset', None) is None and isinstance(train_ds, dict):
        obj = _resolve_type(transfer['type'])
        if obj is not None and 'target_dataset' in _accepted_args(obj)[0]:
            transfer['target_dataset'] = {k: v for k, v in train_ds.items() if k != 'pipeline'}
    dp = model.get('data_preprocessor', None)
    if not isinstance(dp, dict):
        return cfg
    n = dp.get('num_classes', None)
    if n is None:
        for loader in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
            ds = (cfg.get(loader, None) or {}).get('dataset', None)
            try:
                n = dataset_num_classes(ds)
            except FileNotFoundError as err:
                raise FileNotFoundError(
                    f'{err}\n(The class count of the model is the {loader.split("_")[0]} '
                    f'set\'s: its classes are read from the data. Put the data in place, or '
                    f'set model.data_preprocessor.num_classes in the config.)') from err
            if n is not None:
                dp['num_classes'] = n
                break
    if n is None:
        return cfg
    for key in ('val_evaluator', 'test_evaluator'):
        entries = cfg.get(key, None)
        if isinstance(entries, dict) and 'metrics' in entries:
            entries = entries['metrics']
        for entry in entries if isinstance(entries, (list, tuple)) else [entries]:
            if not isinstance(entry, dict) or entry.get('num_classes', None) is not None:
                continue
            obj = _resolve_type(entry.get('type')) if isinstance(entry.get('type'), str) else None
            if obj is not None and 'num_classes' in _accepted_args(obj)[0]:
                entry['num_classes'] = n
    return cfg


def add_transfer_hook(cfg):
    """Add catgen's ``TransferHook`` to ``cfg.custom_hooks`` unless it is there: the one way
    Runner events (stage switches, files for the work dir, checkpoint meta) reach
    ``model.transfer``."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(isinstance(h, dict) and h.get('type') in ('TransferHook', 'catgen.TransferHook')
               for h in hooks):
        hooks.append(dict(type='TransferHook'))
    cfg.custom_hooks = hooks
    return cfg


def inference_model_cfg(model_cfg, has_checkpoint, random_weights=False):
    """The model config to build for inference (test, synthesize) from a training config.

    A trained checkpoint holds everything the model is: the architecture comes from the config
    and the weights from the checkpoint, so the transfer strategy (source checkpoint, training
    data, affinity estimation, Fisher ...) is dropped. A training-free strategy (its class has
    ``requires_training = False``, e.g. CATTrainingFree) IS the model when there is no
    checkpoint: it is kept and builds the model from its source.

    Args:
        model_cfg: ``cfg.model`` (a dict; not modified).
        has_checkpoint: whether trained weights will be loaded.
        random_weights: the caller asks, explicitly, for the untrained model as built (random
            initialisation, no source): a floor for comparisons. The strategy is dropped.

    Returns:
        a new dict.

    Raises:
        ValueError: no checkpoint, and the strategy needs training (the model would be the
            untrained build: random or source weights).
    """
    import copy

    from catgen.registry import TRANSFER_STRATEGIES
    model_cfg = copy.deepcopy(dict(model_cfg))
    transfer = model_cfg.get('transfer') or None
    if random_weights:
        model_cfg['transfer'] = None
        return model_cfg
    for key in ('prior_checkpoint', 'rearranger_checkpoint'):
        if has_checkpoint and model_cfg.get(key) is not None:
            # frozen parts loaded at build (the prior of Fewshot-SMIS and SIS-UG, SIS-UG's
            # stage-1 rearranger) are in the trained checkpoint: not read again
            model_cfg[key] = None
    if transfer is None:
        if not has_checkpoint:
            raise ValueError(
                'without a checkpoint the model would have its random initial weights. Pass the '
                'checkpoint its training wrote (work_dirs/<config name>/iter_<n>.pth); "none" is '
                'only for training-free strategies (CATTrainingFree); "random" evaluates the '
                'untrained model on purpose.')
        return model_cfg
    kind = transfer.get('type') if isinstance(transfer, dict) else type(transfer).__name__
    cls = TRANSFER_STRATEGIES.get(kind) if isinstance(kind, str) else type(transfer)
    training_free = not getattr(cls, 'requires_training', True)
    if has_checkpoint:
        model_cfg['transfer'] = None
    elif not training_free:
        raise ValueError(
            f'the model uses the transfer strategy {kind}, which needs training: without a '
            f'checkpoint it would be the untrained build. Pass the checkpoint its training wrote '
            f'(work_dirs/<config name>/iter_<n>.pth); "none" is only for training-free '
            f'strategies (CATTrainingFree).')
    return model_cfg
