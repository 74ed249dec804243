"""File hashing and the on-disk cache that affinity estimation and evaluation share.

* :func:`file_sha256`: the sha256 of a file's content (a folder: of its files, in sorted order),
  memoised on (resolved path, size, mtime), so an unchanged file is read once per process.
* :class:`FileRef`: marks a path inside cache-key parts; the key then holds the file's content
  hash, so renaming or copying a checkpoint keeps its cache and changing its content
  invalidates it.
* :func:`cache_key`: the sha256 of the canonical JSON of key parts (json-able values and
  :class:`FileRef`).
* :class:`DiskCache`: a folder of ``<kind>-<key[:32]>.npz`` / ``.json`` files, written
  atomically (:func:`catgen.utils.io.atomic_write`), each holding the full key it was written
  for, so that a file written for another key (a 32-digit collision, a hand copy) is a miss.

Only numpy and the standard library are imported here.
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .io import atomic_write

__all__ = ['file_sha256', 'FileRef', 'canonical', 'cache_key', 'DiskCache', 'save_npz',
           'load_npz', 'default_cache_root', 'CACHE_ENV']

#: environment variable naming the user cache root (default ``~/.cache/catgen``).
CACHE_ENV = 'CATGEN_CACHE_DIR'

#: the key stored inside every cache file (npz array / json field).
_KEY_FIELD = '__cache_key__'

# (resolved path, size, mtime_ns) -> hex digest. A memo, not state: a changed file has another
# size or mtime and is hashed again.
_HASHES = {}


def default_cache_root():
    """``$CATGEN_CACHE_DIR`` if set, else ``~/.cache/catgen``."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / '.cache' / 'catgen'


def file_sha256(path, what='file'):
    """sha256 hex digest of a file's content; of a folder: of its files' relative paths and
    contents, in sorted order.

    Memoised on (resolved path, size, mtime_ns): a file that is rewritten (other size or mtime)
    is read again; an unchanged one is read once per process.

    Args:
        path: str | Path of the file or folder.
        what: what the file is, for the error message (e.g. ``'segmenter checkpoint'``).

    Raises:
        FileNotFoundError: nothing at ``path`` (names it).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f'Cannot hash the {what} {path}: it does not exist. Put the file '
                                f'there or pass the path of an existing one.')
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob('*') if p.is_file()):
            h.update(str(f.relative_to(path)).encode())
            h.update(file_sha256(f).encode())
        return h.hexdigest()
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _HASHES.get(memo)
    if digest is None:
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        digest = _HASHES[memo] = h.hexdigest()
    return digest


class FileRef:
    """A path inside cache-key parts: :func:`canonical` replaces it by
    ``{'file_sha256': <content hash>}`` (see :func:`file_sha256`).

    Args:
        path: str | Path of a file or folder, or ``zoo://NAME`` (the model-zoo file, verified).
    """

    def __init__(self, path):
        from catgen.model_zoo.zoo import resolve_checkpoint
        self.path = Path(resolve_checkpoint(path))

    def __repr__(self):
        return f'FileRef({str(self.path)!r})'


def canonical(obj):
    """A JSON-able copy of key parts: dict keys as sorted strings, tuples as lists, paths as
    strings, numpy scalars as Python numbers, :class:`FileRef` as its content hash.

    Raises:
        TypeError: a part that is not json-able (names its type and value).
    """
    if isinstance(obj, FileRef):
        return {'file_sha256': file_sha256(obj.path)}
    if isinstance(obj, dict):
        return {str(k): canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f'Cache key parts must be json-able (or FileRef); got '
                    f'{type(obj).__name__} {obj!r}. Describe it with plain values.')


def cache_key(**parts):
    """sha256 hex digest of the canonical JSON of ``parts`` (order of keys does not matter)."""
    text = json.dumps(canonical(parts), sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------ files
def save_npz(path, arrays, key=None):
    """Write ``arrays`` (dict of numpy arrays) to ``path`` (``.npz``) atomically; with ``key``,
    the key is stored beside them. Returns ``path`` as a :class:`~pathlib.Path`."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if _KEY_FIELD in arrays:
        raise ValueError(f'{_KEY_FIELD!r} is reserved in cache files; rename that array.')
    if key is not None:
        arrays[_KEY_FIELD] = np.array(str(key))
    with atomic_write(path) as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


def load_npz(path, key=None):
    """The arrays of ``path`` as a dict, or None when the file is absent, unreadable
    (truncated, foreign) or, with ``key``, written for another key."""
    import zipfile
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    stored = arrays.pop(_KEY_FIELD, None)
    if key is not None and (stored is None or str(stored) != str(key)):
        return None
    return arrays


class DiskCache:
    """A folder of cache files ``<kind>-<key[:32]>.npz`` (arrays) or ``.json`` (json data).

    Every write is atomic (a killed process leaves the old file or none, never half a file),
    every file holds its full key (a file written for another key is a miss), and an unreadable
    file is a miss (it is recomputed and overwritten).

    Args:
        root: the folder (created on the first write).
        enabled: False makes every lookup a miss and every write a no-op.

    Example::

        cache = DiskCache('work_dirs/.cache/affinity')
        key = cache.key(model=FileRef('ckpt.pth'), images=[...], version=1)
        arrays = cache.load('segpred', key)          # None on a miss
        if arrays is None:
            arrays = compute()
            cache.save('segpred', key, arrays)
    """

    def __init__(self, root, enabled=True):
        self.root = Path(root)
        self.enabled = bool(enabled)

    # kept for the estimators' former attribute name
    @property
    def cache_dir(self):
        return self.root

    def __repr__(self):
        return f'DiskCache({str(self.root)!r}, enabled={self.enabled})'

    @staticmethod
    def key(**parts):
        """sha256 hex digest of the key parts (see :func:`cache_key`)."""
        return cache_key(**parts)

    def path(self, kind, key, suffix='.npz'):
        """``root/<kind>-<first 32 hex digits of key><suffix>``."""
        return self.root / f'{kind}-{str(key)[:32]}{suffix}'

    # ---------------------------------------------------------------- arrays
    def load(self, kind, key):
        """The cached arrays (dict of numpy arrays), or None on a miss."""
        if not self.enabled:
            return None
        return load_npz(self.path(kind, key), key)

    def save(self, kind, key, arrays):
        """Write ``arrays`` atomically; returns the path (None when disabled)."""
        if not self.enabled:
            return None
        return save_npz(self.path(kind, key), arrays, key)

    def get_or_compute(self, kind, key_parts, compute):
        """The cached arrays for ``key_parts`` (a dict), or ``compute()`` (a dict of arrays),
        cached and returned."""
        if not self.enabled:
            return compute()
        key = self.key(**key_parts)
        hit = self.load(kind, key)
        if hit is not None:
            return hit
        arrays = compute()
        self.save(kind, key, arrays)
        return arrays

    # ---------------------------------------------------------------- json
    def load_json(self, kind, key):
        """The cached json data, or None on a miss."""
        if not self.enabled:
            return None
        path = self.path(kind, key, '.json')
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get(_KEY_FIELD) != str(key):
            return None
        return doc.get('data')

    def save_json(self, kind, key, data):
        """Write json-able ``data`` atomically; returns the path (None when disabled)."""
        if not self.enabled:
            return None
        path = self.path(kind, key, '.json')
        text = json.dumps({_KEY_FIELD: str(key), 'data': data}, sort_keys=True)
        with atomic_write(path) as tmp:
            Path(tmp).write_text(text)
        return path
