"""The base class of affinity estimators, and the on-disk cache they share.

An estimator turns two lists of class names (and, for the data-driven ones, images, a segmenter
or a backbone passed as context) into an :class:`~catgen.affinity.matrix.AffinityMatrix`::

    est = AFFINITY_ESTIMATORS.build(dict(type='TextAffinity', backend='sentence_transformers'))
    A = est.estimate(target_classes, source_classes)

Subclasses implement :meth:`BaseAffinityEstimator.estimate` and finish with
:meth:`~BaseAffinityEstimator._from_scores` (similarities) or
:meth:`~BaseAffinityEstimator._from_counts` (histograms), which apply the shared row
post-processing (temperature, top-k, uniform mix, zero-row rule) and record the settings in
``meta``. Expensive intermediate results (embeddings, prototypes, predictions) go through
:class:`AffinityCache`, keyed by a hash of everything that determines them.
"""
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from catgen.utils.io import atomic_write

from .matrix import AffinityMatrix
from .postprocess import ZERO_ROW_RULES

CACHE_ENV = 'CATGEN_CACHE_DIR'


def default_cache_dir(work_dir=None):
    """``work_dir/.cache/affinity`` if a work_dir is known, else ``$CATGEN_CACHE_DIR/affinity``,
    else ``~/.cache/catgen/affinity``."""
    if work_dir is not None:
        return Path(work_dir) / '.cache' / 'affinity'
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root) / 'affinity'
    return Path.home() / '.cache' / 'catgen' / 'affinity'


def spec_settings(spec):
    """A JSON-able description of a model spec for cache keys: a config dict (values as
    strings), an injected module (its class name), or None."""
    if isinstance(spec, dict):
        return {k: str(v) for k, v in spec.items()}
    if spec is not None:
        return {'type': 'module', 'class': type(spec).__qualname__}
    return None


class FileRef:
    """Marks a path inside cache-key parts: the key then uses the file's content hash (sha256),
    so renaming or copying a checkpoint keeps its cache, and changing it invalidates it."""

    def __init__(self, path):
        self.path = Path(path)


class AffinityCache:
    """A directory of ``<kind>-<key>.npz`` files, written atomically.

    The key is the sha256 of the canonical JSON of the key parts: json-able settings plus
    :class:`FileRef` entries (replaced by ``{'file_sha256': ...}``; a directory is hashed file by
    file). File hashes are memoised on this instance by (path, size, mtime).

    Args:
        cache_dir: the directory (created on first write).
        enabled: False makes :meth:`get_or_compute` always compute and never write.
    """

    def __init__(self, cache_dir, enabled=True):
        self.cache_dir = Path(cache_dir)
        self.enabled = enabled
        self._file_hashes = {}

    def file_hash(self, path):
        """sha256 hex digest of a file (or of a directory's files, in sorted order)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f'Cannot hash {path} for the affinity cache: it does not '
                                    f'exist.')
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob('*') if p.is_file()):
                h.update(str(f.relative_to(path)).encode())
                h.update(self.file_hash(f).encode())
            return h.hexdigest()
        st = path.stat()
        memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if memo not in self._file_hashes:
            h = hashlib.sha256()
            with open(path, 'rb') as f:
                for chunk in iter(lambda: f.read(1 << 20), b''):
                    h.update(chunk)
            self._file_hashes[memo] = h.hexdigest()
        return self._file_hashes[memo]

    def _canonical(self, obj):
        if isinstance(obj, FileRef):
            return {'file_sha256': self.file_hash(obj.path)}
        if isinstance(obj, dict):
            return {str(k): self._canonical(v) for k, v in sorted(obj.items())}
        if isinstance(obj, (list, tuple)):
            return [self._canonical(v) for v in obj]
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, np.generic):
            return obj.item()
        if obj is None or isinstance(obj, (str, int, float, bool)):
            return obj
        raise TypeError(f'Cache key parts must be json-able (or FileRef); got {type(obj).__name__}'
                        f' {obj!r}.')

    def key(self, **parts):
        """sha256 hex digest of the canonical JSON of ``parts``."""
        text = json.dumps(self._canonical(parts), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, kind, key):
        return self.cache_dir / f'{kind}-{key[:32]}.npz'

    def load(self, kind, key):
        """The cached arrays as a dict, or None if absent (or unreadable)."""
        p = self.path(kind, key)
        if not (self.enabled and p.is_file()):
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError):  # a truncated or foreign file: recompute
            return None

    def save(self, kind, key, arrays):
        """Write ``arrays`` (dict of numpy arrays) to the cache atomically; returns the path."""
        if not self.enabled:
            return None
        p = self.path(kind, key)
        with atomic_write(p) as tmp:
            np.savez(tmp, **arrays)
        return p

    def get_or_compute(self, kind, key_parts, compute):
        """Return cached arrays for ``key_parts``, or ``compute()`` them (a dict of arrays), cache
        and return them."""
        if not self.enabled:
            return compute()
        key = self.key(**key_parts)
        hit = self.load(kind, key)
        if hit is not None:
            return hit
        arrays = compute()
        self.save(kind, key, arrays)
        return arrays


class BaseAffinityEstimator:
    """Base class: shared row post-processing, settings for ``meta``, and the cache.

    Args:
        temperature: T of the softmax on scores (ignored by count-based estimators).
        top_k: keep the k largest entries per row (renormalised), or None for all.
        uniform_mix: eps in [0, 1]; rows become ``(1 - eps) * row + eps / N_s``.
        zero_row: rule for target classes the estimator never saw: ``'uniform'`` (warn, uniform
            row) or ``'error'``.
        cache_dir: where :attr:`cache` writes; None = :func:`default_cache_dir` of the
            ``work_dir`` passed to :meth:`estimate` (or the user cache).
        use_cache: False disables the cache.
    """

    #: the name recorded in ``meta['estimator']``; subclasses set it to their registered name.
    name = 'base'

    def __init__(self, temperature=1.0, top_k=None, uniform_mix=0.0, zero_row='uniform',
                 cache_dir=None, use_cache=True):
        if not temperature > 0:
            raise ValueError(f'temperature={temperature!r} must be > 0.')
        if top_k is not None and (int(top_k) != top_k or top_k < 1):
            raise ValueError(f'top_k={top_k!r} must be a positive integer or None.')
        if not 0.0 <= uniform_mix <= 1.0:
            raise ValueError(f'uniform_mix={uniform_mix!r} must be in [0, 1].')
        if zero_row not in ZERO_ROW_RULES:
            raise ValueError(f'zero_row={zero_row!r} must be one of {ZERO_ROW_RULES}.')
        self.temperature = float(temperature)
        self.top_k = None if top_k is None else int(top_k)
        self.uniform_mix = float(uniform_mix)
        self.zero_row = zero_row
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    # -------------------------------------------------------------- interface
    def estimate(self, target_classes, source_classes, **ctx):
        """Estimate the affinity matrix.

        Args:
            target_classes: the N_t target class names (real classes; a leading don't-care
                name is not expected).
            source_classes: the N_s source class names.
            **ctx: estimator-specific context (``work_dir``, images, a segmenter ...); unknown
                keys are ignored so that one call site can serve every estimator.

        Returns:
            AffinityMatrix with ``meta['estimator'] = self.name`` and the settings.
        """
        raise NotImplementedError

    def settings(self):
        """json-able settings recorded in ``meta`` and used in cache keys."""
        return dict(temperature=self.temperature, top_k=self.top_k,
                    uniform_mix=self.uniform_mix, zero_row=self.zero_row)

    # -------------------------------------------------------------- helpers
    def cache(self, work_dir=None):
        """The :class:`AffinityCache` for this estimator (see ``cache_dir`` / ``use_cache``)."""
        d = self.cache_dir if self.cache_dir is not None else default_cache_dir(work_dir)
        return AffinityCache(d, enabled=self.use_cache)

    def _meta(self, **extra):
        meta = {'estimator': self.name}
        meta.update(self.settings())
        meta.update(extra)
        return meta

    def _from_scores(self, scores, target_classes, source_classes, **extra_meta):
        return AffinityMatrix.from_scores(scores, target_classes, source_classes,
                                          temperature=self.temperature, top_k=self.top_k,
                                          uniform_mix=self.uniform_mix, zero_row=self.zero_row,
                                          meta=self._meta(**extra_meta))

    def _from_counts(self, counts, target_classes, source_classes, **extra_meta):
        return AffinityMatrix.from_counts(counts, target_classes, source_classes,
                                          top_k=self.top_k, uniform_mix=self.uniform_mix,
                                          zero_row=self.zero_row, meta=self._meta(**extra_meta))

    def __repr__(self):
        return f'{type(self).__name__}({self.settings()})'
