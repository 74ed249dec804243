"""Safe checkpoint loading: ``torch.load(weights_only=True)`` with an explicit allowlist.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, which refuses every global that
is not a tensor, a plain container or a type allowlisted with
:func:`torch.serialization.add_safe_globals`. An MMEngine checkpoint carries, besides tensors, the
message hub's :class:`~mmengine.logging.HistoryBuffer` objects and numpy arrays and scalars, so
MMEngine 0.10.7 can no longer resume. :func:`install_safe_globals` allowlists exactly what a
Runner checkpoint needs (found by saving one and reading its pickle); MMEngine's
``load_from_local`` calls ``torch.load`` without ``weights_only``, so the global allowlist is what
makes ``Runner.resume`` / ``load_checkpoint`` work again, and catgen never passes
``weights_only=False``.

``getattr`` is needed too: ``HistoryBuffer.__getstate__`` stores its statistics methods, which
pickle writes as ``getattr(HistoryBuffer, 'mean')``. Allowlisting the builtin would let a file
reach any attribute of any allowlisted object (``HistoryBuffer.mean.__globals__`` is a module's
globals dict, which the unpickler may then write into), so catgen maps ``builtins.getattr`` to
:func:`_history_buffer_getattr`, which only returns HistoryBuffer's statistics methods.
"""
import errno
import pickle
import re
from pathlib import Path

__all__ = ['install_safe_globals', 'safe_globals', 'safe_load', 'load_state_dict_checked',
           'read_state_dict', 'UnsafeCheckpointError', 'CheckpointMismatchError',
           'CorruptCheckpointError']

_MAX_LISTED = 10


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects outside catgen's allowlist; it was not loaded."""


class CheckpointMismatchError(RuntimeError):
    """A state dict does not fit the module: missing/unexpected keys or other shapes."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file cannot be read at all: truncated, empty, corrupt or not a torch file."""


_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name):
    """``getattr`` restricted to ``HistoryBuffer.<statistics method>`` (see the module doc)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = set(_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        value = getattr(HistoryBuffer, name, None)
        if callable(value):
            return value
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL getattr({_describe(obj)}, {name!r}) refused: catgen only '
        f'allows getattr(HistoryBuffer, <statistics method>) in checkpoints.')


def _describe(obj):
    name = getattr(obj, '__qualname__', None) or type(obj).__qualname__
    module = getattr(obj, '__module__', None) or type(obj).__module__
    return f'{module}.{name}'


def _allowlist():
    """``[(object, 'module.name as written in the pickle'), ...]``, every entry explicit."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries = [
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_getattr, 'builtins.getattr'),
        (np.ndarray, 'numpy.ndarray'),
        (np.dtype, 'numpy.dtype'),
        (type(np.dtype(np.float64)), 'numpy.dtypes.Float64DType'),
        (type(np.dtype(np.int64)), 'numpy.dtypes.Int64DType'),
    ]
    # numpy >= 2 pickles these as numpy._core.multiarray.*, numpy 1.x as numpy.core.multiarray.*
    for package in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((multiarray._reconstruct, f'{package}._reconstruct'))
        entries.append((multiarray.scalar, f'{package}.scalar'))
    return entries


def safe_globals():
    """The allowlist entries as given to :func:`torch.serialization.add_safe_globals`.

    ``HistoryBuffer``, ``numpy.ndarray``, ``numpy.dtype``, ``numpy.dtypes.Float64DType``,
    ``numpy.dtypes.Int64DType``, ``numpy._core.multiarray._reconstruct`` and ``.scalar`` (also
    under numpy 1.x's ``numpy.core.multiarray`` names) and ``builtins.getattr`` mapped to a
    HistoryBuffer-only getattr.
    """
    return _allowlist()


def install_safe_globals():
    """Allowlist, process-wide, the globals an MMEngine checkpoint needs (idempotent).

    Returns the list of entries (see :func:`safe_globals`).
    """
    import torch.serialization
    entries = _allowlist()
    torch.serialization.add_safe_globals(entries)
    return entries


_REFUSED_PATTERNS = (
    r'Unsupported global: GLOBAL (.+?) (?:was not an allowed global|refused)',
    r'Trying to load unsupported GLOBAL (\S+) whose module',
    r"(?:but got|allowlisted via `add_safe_globals`,? but got) (<class '[^']+'>)",
    r'Trying to call reduce for unrecognized function (.+?)(?: which belongs|$)',
)


def _offending_global(message):
    for pattern in _REFUSED_PATTERNS:
        match = re.search(pattern, message, flags=re.MULTILINE)
        if match:
            return match.group(1).strip()
    return None


def safe_load(path, map_location='cpu'):
    """Load a checkpoint with ``torch.load(weights_only=True)`` and catgen's allowlist.

    Args:
        path: str | Path of a ``.pth`` file, or ``zoo://NAME`` (a verified model-zoo file).
        map_location: as :func:`torch.load`; ``'cpu'`` by default.

    Returns:
        Whatever the file holds (usually a dict with ``state_dict``, ``meta`` ...).

    Raises:
        FileNotFoundError: no file at ``path``.
        UnsafeCheckpointError: the file holds objects outside the allowlist, or pickle data the
            safe loader cannot read (then it is most likely corrupt); nothing in it ran.
        CorruptCheckpointError: the file is truncated, empty, corrupt or not a torch file.
    """
    import torch

    from catgen.model_zoo.zoo import resolve_checkpoint
    path = Path(resolve_checkpoint(path))
    if not path.is_file():
        raise FileNotFoundError(f'Checkpoint file not found: {path}. Put the checkpoint there '
                                f'or pass the path of an existing file.')
    install_safe_globals()
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        offending = _offending_global(str(err))
        if offending is None:
            raise UnsafeCheckpointError(_unreadable_message(path, err)) from err
        raise UnsafeCheckpointError(
            f"Refused to load checkpoint '{path}': it carries objects outside catgen's allowlist "
            f'of safe types ({offending}). Unpickling such objects can run arbitrary code, so '
            f'catgen loads checkpoints with torch.load(weights_only=True) and refused this file '
            f'for safety; nothing outside the allowlist was run. What to do: if you trust where '
            f'the file comes from, re-save only its tensors in a trusted session (e.g. '
            f"torch.save({{'state_dict': ckpt['state_dict']}}, 'clean.pth')) and load that; if "
            f'{offending} is a harmless class of your own that you write into checkpoints, '
            f'allowlist it with torch.serialization.add_safe_globals([...]) before loading. '
            f'Never load it with weights_only=False.') from err
    except (RuntimeError, EOFError, KeyError, OSError) as err:
        # torch's words for a truncated zip ("failed finding central directory", or OSError
        # EINVAL for a short one), an empty file (EOFError), or bytes that are not a torch file
        # (e.g. KeyError on a text file); other RuntimeErrors (e.g. a CUDA map_location on a CPU
        # machine) and OSErrors (permissions) pass through unchanged
        if isinstance(err, RuntimeError) and not _CORRUPT.search(str(err)):
            raise
        if isinstance(err, OSError) and err.errno != errno.EINVAL:
            raise
        raise CorruptCheckpointError(_corrupt_message(path, err)) from err


_CORRUPT = re.compile(r'PytorchStreamReader|zip archive|central directory|corrupt|magic number|'
                      r'EOF', flags=re.IGNORECASE)


def _torch_says(err):
    text = ' '.join(str(err).split())
    text = text.split(' This is an internal miniz error')[0]
    return f'{type(err).__name__}: {text[:200]}' if text else type(err).__name__


def _corrupt_message(path, err):
    size = path.stat().st_size if path.is_file() else 0
    return (f"Cannot read checkpoint '{path}' ({size} bytes): it is truncated, empty, corrupt or "
            f'not a PyTorch checkpoint (torch says {_torch_says(err)}). A checkpoint cut short '
            f'by a crash, a full disk or an interrupted copy looks like this; an earlier '
            f'iter_*.pth in the same work dir is usually intact. '
            f'What to do: copy the file again from where it came from, or use (or --resume '
            f'from) an earlier checkpoint.')


def _unreadable_message(path, err):
    detail = re.search(r'WeightsUnpickler error:\s*(.+?)(?:\n\n|$)', str(err), flags=re.S)
    said = ' '.join(detail.group(1).split()) if detail else _torch_says(err)
    return (f"Cannot load checkpoint '{path}' safely: its pickle data is not something "
            f'torch.load(weights_only=True) understands (torch says: {said}). Most often the file '
            f'is corrupt or not a PyTorch checkpoint at all (copy it again, or use another '
            f'checkpoint); nothing in it was run. If it is a genuine checkpoint from a trusted '
            f'source written by other code, re-save only its tensors in a trusted session (e.g. '
            f"torch.save({{'state_dict': ckpt['state_dict']}}, 'clean.pth')) and load that. "
            f'Never load it with weights_only=False.')


def _shape(value):
    shape = getattr(value, 'shape', None)
    return tuple(shape) if shape is not None else None


def _listing(title, items):
    shown = list(items[:_MAX_LISTED])
    more = len(items) - len(shown)
    lines = [f'  {title} ({len(items)}):']
    lines += [f'    {item}' for item in shown]
    if more > 0:
        lines.append(f'    ... and {more} more')
    return lines


def _common_prefix_fix(missing, unexpected, prefix_hint):
    """A prefix that, added to or stripped from the checkpoint's keys, makes them match."""
    candidates = [prefix_hint] if prefix_hint else []
    candidates += ['module.', 'model.', 'state_dict.', 'generator.', 'ema.', 'generator_ema.']
    missing, unexpected = set(missing), set(unexpected)
    for prefix in dict.fromkeys(candidates):
        stripped = {k[len(prefix):] for k in unexpected if k.startswith(prefix)}
        if stripped and stripped & missing and len(stripped & missing) >= len(missing) / 2:
            return f"the checkpoint's keys carry a '{prefix}' prefix the model's do not: strip it"
        added = {prefix + k for k in unexpected}
        if added & missing and len(added & missing) >= len(missing) / 2:
            return f"the model's keys carry a '{prefix}' prefix the checkpoint's do not: add it"
    return None


def load_state_dict_checked(module, state_dict, strict=True, prefix_hint=None, source=None):
    """Load ``state_dict`` into ``module``; on a mismatch raise one readable message.

    Keys in both with different shapes always fail (PyTorch cannot load them either); missing and
    unexpected keys fail when ``strict``. The message lists missing keys, unexpected keys and
    shape mismatches (checkpoint shape vs model shape), each truncated with a count, and says
    what usually causes it: a checkpoint of another architecture or another number of classes.

    Args:
        module: ``torch.nn.Module`` to load into.
        state_dict: ``Mapping[str, Tensor]`` (a model's weights, not a whole MMEngine checkpoint:
            pass ``ckpt['state_dict']``).
        strict: as :meth:`torch.nn.Module.load_state_dict`.
        prefix_hint: optional key prefix (e.g. ``'generator.'``) the caller suspects the
            checkpoint's keys carry or lack; the message then says whether adding or stripping
            it would make the keys match (common prefixes such as ``'module.'`` are tried too).
        source: optional text naming where the weights come from (a path), for the message.

    Returns:
        The ``(missing_keys, unexpected_keys)`` named tuple of ``load_state_dict``.

    Raises:
        CheckpointMismatchError: as described above.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = []
    for key, value in state_dict.items():
        if key in expected:
            got, want = _shape(value), _shape(expected[key])
            if got is not None and want is not None and got != want:
                mismatched.append((key, got, want))
    if mismatched or (strict and (missing or unexpected)):
        raise CheckpointMismatchError(_mismatch_message(
            module, missing, unexpected, mismatched, strict, prefix_hint, source,
            'state_dict' in unexpected))
    return module.load_state_dict(state_dict, strict=strict)


def _mismatch_message(module, missing, unexpected, mismatched, strict, prefix_hint, source,
                      looks_like_checkpoint):
    where = f' from {source}' if source else ''
    counts = [f'{len(mismatched)} shape mismatch{"es" if len(mismatched) != 1 else ""}']
    if strict:
        counts = [f'{len(missing)} missing', f'{len(unexpected)} unexpected'] + counts
    lines = [f'The weights{where} do not fit {type(module).__name__}: ' + ', '.join(counts) + '.']
    if strict and missing:
        lines += _listing('missing keys (in the model, not in the checkpoint)', missing)
    if strict and unexpected:
        lines += _listing('unexpected keys (in the checkpoint, not in the model)', unexpected)
    if mismatched:
        lines += _listing('shape mismatches (checkpoint vs model)',
                          [f'{k}: checkpoint {list(got)} vs model {list(want)}'
                           for k, got, want in mismatched])
    hints = []
    if looks_like_checkpoint:
        hints.append("this looks like a whole MMEngine checkpoint: pass ckpt['state_dict']")
    fix = _common_prefix_fix(missing, unexpected, prefix_hint) if strict else None
    if fix:
        hints.append(fix)
    hints.append('a checkpoint of another architecture or another number of classes does not '
                 'load: check that the config (model type, channels, num_classes, which counts '
                 'the don\'t-care channel) matches the one the checkpoint was trained with')
    lines.append('What to do: ' + '; '.join(hints) + '.')
    return '\n'.join(lines)


# ------------------------------------------------------------------------ state dict reading
#: wrappers an exported checkpoint may nest its weights in, tried in this order.
STATE_DICT_WRAPPERS = ('state_dict', 'model', 'teacher', 'student')


def _key_heads(keys, limit=_MAX_LISTED):
    """The distinct first dotted components of ``keys`` (``['discriminator.', 'generator.']``)."""
    heads = sorted({str(k).split('.', 1)[0] + '.' for k in keys})
    return heads[:limit] + ([f'... and {len(heads) - limit} more'] if len(heads) > limit else [])


def read_state_dict(checkpoint, prefix=None, strip_prefixes=('module.',), what='checkpoint',
                    wrappers=STATE_DICT_WRAPPERS):
    """The weights (``{name: Tensor}``) of a checkpoint, optionally one sub-module's.

    1. ``checkpoint`` is read with :func:`safe_load` when it is a path;
    2. the weights are unwrapped from the first of ``wrappers`` that holds a dict
       (``ckpt['state_dict']`` for MMEngine; ``model`` / ``teacher`` / ``student`` for exported
       DINO-style files); a dict without any of them is taken as the state dict itself;
    3. with ``prefix``, only the keys under the first prefix that has any are kept, with that
       prefix removed (``prefix=('generator_ema.module.', 'generator.')`` prefers the EMA
       generator and falls back on the plain one);
    4. each of ``strip_prefixes`` is stripped from the start of every key where present,
       repeatedly (DDP's ``module.``; nested wrappers give ``module.module.``), before the
       selection (a wrapped whole model) and after it (a wrapped sub-module).

    Args:
        checkpoint: str | Path of a ``.pth`` file, or an already loaded checkpoint dict.
        prefix: None (all keys), a str, or a sequence of str tried in order.
        strip_prefixes: key prefixes to remove (default DDP's ``module.``), see 4.
        what: what the checkpoint is, for messages (e.g. ``'OASIS source checkpoint'``); with
            a loaded dict, name its file here (``f'checkpoint {path}'``).
        wrappers: the keys under which a checkpoint may nest its weights.

    Returns:
        ``dict[str, Tensor]`` (a new dict; the tensors are not copied).

    Raises:
        FileNotFoundError / UnsafeCheckpointError / CorruptCheckpointError: as :func:`safe_load`.
        ValueError: the checkpoint holds no dict of weights, or no key under any of the
            prefixes; the message names the file, the prefixes tried and the ones found.
    """
    is_path = isinstance(checkpoint, (str, Path))
    name = f'{what} {checkpoint}' if is_path else what  # a loaded dict: `what` names it
    ckpt = safe_load(checkpoint) if is_path else checkpoint
    if not isinstance(ckpt, dict):
        raise ValueError(f'The {name} holds a {type(ckpt).__name__}, not a dict of '
                         f'weights; pass a checkpoint saved with torch.save(model.state_dict()) '
                         f'or an MMEngine checkpoint with "state_dict".')
    state = ckpt
    for wrapper in wrappers or ():
        if isinstance(ckpt.get(wrapper), dict):
            state = ckpt[wrapper]
            break
    strip = tuple(p for p in (strip_prefixes or ()) if p)

    def stripped(key):
        key = str(key)
        changed = True
        while changed:
            changed = False
            for p in strip:
                if key.startswith(p):
                    key, changed = key[len(p):], True
        return key

    # DDP prefixes go first (a whole wrapped model: 'module.generator.x'), and again after the
    # selection (a wrapped sub-module: 'generator_ema.module.x' under prefix 'generator_ema.')
    state = {stripped(k): v for k, v in state.items()}
    if prefix is not None:
        prefixes = (prefix,) if isinstance(prefix, str) else tuple(prefix)
        for p in prefixes:
            picked = {stripped(k[len(p):]): v for k, v in state.items() if k.startswith(p)}
            if picked:
                return picked
        tried = ', '.join(f'"{p}*"' for p in prefixes)
        found = ', '.join(_key_heads(state)) or 'no keys at all'
        raise ValueError(f'The {name} holds no {tried} weights (its keys start with '
                         f'{found}). Pass a checkpoint that has them (e.g. a catgen checkpoint '
                         f'from tools/train.py), or set prefix= to the key prefix of the part '
                         f'you want.')
    return state
