"""The base class of affinity estimators.

An estimator turns two lists of class names (and, for the data-driven ones, images, a segmenter
or a backbone passed as context) into an :class:`~catgen.affinity.matrix.AffinityMatrix`::

    est = AFFINITY_ESTIMATORS.build(dict(type='TextAffinity', backend='sentence_transformers'))
    A = est.estimate(target_classes, source_classes)

Subclasses implement :meth:`BaseAffinityEstimator.estimate` and finish with
:meth:`~BaseAffinityEstimator._from_scores` (similarities) or
:meth:`~BaseAffinityEstimator._from_counts` (histograms), which apply the shared row
post-processing (temperature, top-k, uniform mix, zero-row rule) and record the settings in
``meta``. Expensive intermediate results (embeddings, prototypes, predictions) go through
catgen's shared on-disk cache (:class:`catgen.utils.cache.DiskCache`), keyed by a hash of
everything that determines them (model files by content hash, :class:`FileRef`).
"""
from pathlib import Path

from catgen.utils.cache import CACHE_ENV, DiskCache, FileRef, default_cache_root

from .matrix import AffinityMatrix
from .postprocess import ZERO_ROW_RULES

__all__ = ['BaseAffinityEstimator', 'FileRef', 'default_cache_dir', 'spec_settings',
           'CACHE_ENV']


def default_cache_dir(work_dir=None):
    """``work_dir/.cache/affinity`` if a work_dir is known, else ``$CATGEN_CACHE_DIR/affinity``,
    else ``~/.cache/catgen/affinity``."""
    if work_dir is not None:
        return Path(work_dir) / '.cache' / 'affinity'
    return default_cache_root() / 'affinity'


def spec_settings(spec):
    """A JSON-able description of a model spec for ``meta``: a config dict (values as
    strings), an injected module (its class name), or None."""
    if isinstance(spec, dict):
        return {k: str(v) for k, v in spec.items()}
    if spec is not None:
        return {'type': 'module', 'class': type(spec).__qualname__}
    return None


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
        """The :class:`~catgen.utils.cache.DiskCache` for this estimator (see ``cache_dir`` /
        ``use_cache``)."""
        d = self.cache_dir if self.cache_dir is not None else default_cache_dir(work_dir)
        return DiskCache(d, enabled=self.use_cache)

    def set_run_options(self, progress=None, cache_dir=None, use_cache=None):
        """Apply a command line's run options (None leaves a setting as it is).

        Args:
            progress: show progress bars (estimators that have them).
            cache_dir: the cache folder, used only where the config did not set one.
            use_cache: False disables the cache (True never enables a cache the estimator
                does not use).

        Returns:
            self. :class:`~catgen.affinity.CombinedAffinity` passes the options on to its
            components.
        """
        if progress is not None and hasattr(self, 'progress'):
            self.progress = bool(progress)
        if cache_dir is not None and self.cache_dir is None:
            self.cache_dir = cache_dir
        if use_cache is False:
            self.use_cache = False
        return self

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
