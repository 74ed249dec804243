"""KID: unbiased MMD^2 between features of generated and real images, cubic polynomial kernel.

``k(x, y) = (x . y / D + 1)^3``; for one subset of ``m`` generated features ``X`` and ``m`` real
features ``Y``::

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2

averaged over ``num_subsets`` subsets (Binkowski et al. 2018, as torch-fidelity / mmagic).
Subsets are drawn with ``rng = np.random.default_rng(seed)``: for each subset in turn
``rng.choice(N_f, m, replace=False)`` then ``rng.choice(N_r, m, replace=False)``.
"""
import numpy as np
from mmengine.logging import print_log

from catgen.registry import METRICS

from .base_feature_metric import BaseFeatureMetric

__all__ = ['KID', 'kid_from_features', 'polynomial_mmd']

#: above this many kernel entries, kernels are computed per subset instead of once in full.
_FULL_KERNEL_ENTRIES = 16_000_000


def _kernel(x, y, d):
    return (x @ y.T / d + 1) ** 3


def polynomial_mmd(kxx, kyy, kxy):
    """Unbiased MMD^2 from the three ``[m, m]`` kernel matrices of one subset."""
    m = kxx.shape[0]
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float(sum_xx / (m * (m - 1)) + sum_yy / (m * (m - 1)) - 2 * kxy.mean())


def kid_from_features(fake, real, num_subsets=100, subset_size=1000, seed=0):
    """KID mean and standard deviation over subsets.

    Args:
        fake: ``[N_f, D]`` generated features.
        real: ``[N_r, D]`` real features.
        num_subsets: number of subsets.
        subset_size: images per side in each subset; clipped to ``min(N_f, N_r)`` (with a log
            message) when larger.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` floats (std with ``ddof=0`` over the subsets).
    """
    fake = np.asarray(fake, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    if fake.ndim != 2 or real.ndim != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(f'KID needs [N, D] features with the same D, got {fake.shape} (generated)'
                         f' and {real.shape} (real).')
    if int(num_subsets) < 1:
        raise ValueError(f'num_subsets must be >= 1, got {num_subsets}')
    n_f, n_r, d = len(fake), len(real), fake.shape[1]
    m = min(int(subset_size), n_f, n_r)
    if m < 2:
        raise ValueError(f'KID needs at least 2 images on each side, got {n_f} generated and '
                         f'{n_r} real.')
    if m < subset_size:
        print_log(f'KID: subset_size {subset_size} > images available ({n_f} generated, {n_r} '
                  f'real); using subsets of {m}.', logger='current')
    rng = np.random.default_rng(seed)
    full = max(n_f, n_r) ** 2 <= _FULL_KERNEL_ENTRIES
    if full:
        k_ff, k_rr, k_fr = _kernel(fake, fake, d), _kernel(real, real, d), _kernel(fake, real, d)
    values = []
    for _ in range(int(num_subsets)):
        i_f = rng.choice(n_f, m, replace=False)
        i_r = rng.choice(n_r, m, replace=False)
        if full:
            kxx, kyy, kxy = (k_ff[np.ix_(i_f, i_f)], k_rr[np.ix_(i_r, i_r)],
                             k_fr[np.ix_(i_f, i_r)])
        else:
            x, y = fake[i_f], real[i_r]
            kxx, kyy, kxy = _kernel(x, x, d), _kernel(y, y, d), _kernel(x, y, d)
        values.append(polynomial_mmd(kxx, kyy, kxy))
    values = np.asarray(values)
    return float(values.mean()), float(values.std())


@METRICS.register_module()
class KID(BaseFeatureMetric):
    """Kernel Inception Distance between generated and real images (lower is better).

    Output keys: ``kid`` (mean over subsets) and ``kid_std`` (their standard deviation) with
    the standard FID Inception network; ``kid_<extractor name>`` and ``kid_std_<extractor
    name>`` with any other extractor (see :class:`~catgen.evaluation.metrics.FID`). Values are
    raw MMD^2 (not multiplied by 1000).

    With ``subset_size`` >= the number of images on both sides and equal counts (e.g. 500
    generated vs 500 real), every subset is the whole set reordered: ``kid`` is then the
    unbiased MMD^2 of the full sets and ``kid_std`` is 0; pass a smaller ``subset_size`` (e.g.
    100) for a spread.

    Args:
        num_subsets: number of random subsets (100, as torch-fidelity).
        subset_size: images per side per subset (1000; clipped to the images available).
        seed: seed of the subset draws (fixed: the same features give the same KID).
        feature_extractor, use_all_samples, cache_dir, use_cache, batch_size, device, progress,
        prefix, collect_device: see :class:`.BaseFeatureMetric`.
    """

    def __init__(self, num_subsets=100, subset_size=1000, seed=0, **kwargs):
        super().__init__(**kwargs)
        if int(num_subsets) < 1 or int(subset_size) < 2:
            raise ValueError(f'KID needs num_subsets >= 1 and subset_size >= 2, got '
                             f'{num_subsets} and {subset_size}')
        self.num_subsets = int(num_subsets)
        self.subset_size = int(subset_size)
        self.seed = seed

    def compute_from_features(self, fake, real):
        mean, std = kid_from_features(fake, real, self.num_subsets, self.subset_size, self.seed)
        return {self.key('kid'): mean, self.key('kid_std'): std}
