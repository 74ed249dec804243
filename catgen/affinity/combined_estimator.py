"""CombinedAffinity: a weighted mean of several estimators' rows.

``A = sum_i w_i A_i / sum_i w_i``. A mean of row-stochastic matrices is row-stochastic, so no
renormalisation is needed. With ``skip_fallback_rows`` (default), a component whose row for a
target class came from the zero-row rule (it never saw that class; recorded in its
``meta['fallback_classes']``) does not vote for that class: the other components' weights are
renormalised over the row. A class that every component missed keeps the uniform row.
"""
import numpy as np

from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator
from .matrix import AffinityMatrix
from .postprocess import keep_top_k, mix_uniform


@AFFINITY_ESTIMATORS.register_module()
class CombinedAffinity(BaseAffinityEstimator):
    """Weighted mean of the rows of several estimators.

    Args:
        estimators: list of estimator configs (``dict(type='TextAffinity', ...)``) or instances.
        weights: one non-negative weight per estimator (normalised to sum 1); None = equal.
        skip_fallback_rows: ignore a component's zero-row-rule rows (see module docstring).
        top_k, uniform_mix: optional post-processing of the combined rows.
        progress: tqdm bar over the components.
    """

    name = 'CombinedAffinity'

    def __init__(self, estimators, weights=None, skip_fallback_rows=True, top_k=None,
                 uniform_mix=0.0, progress=False):
        super().__init__(top_k=top_k, uniform_mix=uniform_mix, use_cache=False)
        if not estimators:
            raise ValueError('CombinedAffinity needs at least one estimator in `estimators`.')
        self.estimators = [AFFINITY_ESTIMATORS.build(e) if isinstance(e, dict) else e
                           for e in estimators]
        if weights is None:
            weights = [1.0] * len(self.estimators)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(self.estimators),):
            raise ValueError(f'weights has {weights.size} entries for {len(self.estimators)} '
                             f'estimators; give one weight per estimator.')
        if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f'weights={weights.tolist()} must be finite, >= 0 and not all 0.')
        self.weights = weights / weights.sum()
        self.skip_fallback_rows = skip_fallback_rows
        self.progress = progress

    def set_run_options(self, progress=None, cache_dir=None, use_cache=None):
        """Pass the run options on to every component (see
        :meth:`BaseAffinityEstimator.set_run_options`); ``progress`` also sets this bar."""
        if progress is not None:
            self.progress = bool(progress)
        for est in self.estimators:
            est.set_run_options(progress=progress, cache_dir=cache_dir, use_cache=use_cache)
        return self

    def settings(self):
        return dict(weights=[float(w) for w in self.weights],
                    skip_fallback_rows=self.skip_fallback_rows, top_k=self.top_k,
                    uniform_mix=self.uniform_mix)

    def estimate(self, target_classes, source_classes, **ctx):
        """Run every component with the same arguments and combine their rows.

        Returns:
            AffinityMatrix; ``meta['components']`` holds each component's meta.
        """
        items = list(zip(self.estimators, self.weights))
        if self.progress:
            from tqdm import tqdm
            items = tqdm(items, desc='affinity estimators', unit='estimator')
        mats = []
        for est, _ in items:
            m = est.estimate(target_classes, source_classes, **ctx)
            m.check_names(list(target_classes), list(source_classes))
            mats.append(m)
        target = mats[0].target_classes
        n_t = len(target)
        # votes[i, t] = weight of component i on row t (0 where it fell back).
        votes = np.repeat(self.weights[:, None], n_t, axis=1)
        if self.skip_fallback_rows:
            for i, m in enumerate(mats):
                for name in m.meta.get('fallback_classes', []):
                    if name in target:
                        votes[i, target.index(name)] = 0.0
        everyone_missed = votes.sum(axis=0) == 0
        votes[:, everyone_missed] = self.weights[:, None]
        votes = votes / votes.sum(axis=0, keepdims=True)
        rows = sum(votes[i][:, None] * m.values for i, m in enumerate(mats))
        rows = mix_uniform(keep_top_k(rows, self.top_k, skip=everyone_missed), self.uniform_mix)
        fallen = [t for t, miss in zip(target, everyone_missed) if miss]
        meta = self._meta(components=[m.meta for m in mats], fallback_classes=fallen)
        return AffinityMatrix(rows, target, mats[0].source_classes, meta)
