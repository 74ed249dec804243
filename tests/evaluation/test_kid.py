"""KID: unbiased MMD^2 with the cubic polynomial kernel, in subsets, against a direct numpy
computation (explicit sums over pairs), and the metric's keys and errors."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from catgen.evaluation.metrics import KID
from catgen.evaluation.metrics import kid as kid_module
from catgen.evaluation.metrics.kid import kid_from_features

sys.path.insert(0, str(Path(__file__).resolve().parent / 'feature_extractors'))
from tiny_extractor import TinyFeatureExtractor  # noqa: E402


def direct_mmd(x, y):
    """Unbiased MMD^2, k(a, b) = (a.b / d + 1)^3, by explicit loops over pairs."""
    m, d = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def direct_kid(fake, real, num_subsets, subset_size, seed):
    rng = np.random.default_rng(seed)   # the documented draw order: fake subset, real subset
    values = []
    for _ in range(num_subsets):
        i_f = rng.choice(len(fake), subset_size, replace=False)
        i_r = rng.choice(len(real), subset_size, replace=False)
        values.append(direct_mmd(fake[i_f], real[i_r]))
    return np.mean(values), np.std(values)


@pytest.fixture
def feats():
    rng = np.random.default_rng(0)
    fake = np.abs(rng.normal(0.5, 1.0, (23, 6)))
    real = np.abs(rng.normal(0.2, 0.8, (17, 6)))
    return fake, real


@pytest.mark.parametrize('full_kernels', [True, False])
def test_kid_matches_direct_numpy_over_subsets(feats, monkeypatch, full_kernels):
    fake, real = feats
    if not full_kernels:  # per-subset kernels (the path for large sets)
        monkeypatch.setattr(kid_module, '_FULL_KERNEL_ENTRIES', 0)
    mean, std = kid_from_features(fake, real, num_subsets=7, subset_size=9, seed=3)
    ref_mean, ref_std = direct_kid(fake, real, 7, 9, 3)
    assert mean == pytest.approx(ref_mean, rel=1e-10, abs=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-8, abs=1e-12)
    assert std > 0  # the subsets differ


def test_full_size_subsets_give_the_full_unbiased_mmd(feats):
    fake, real = feats
    m = len(real)
    mean, std = kid_from_features(fake[:m], real, num_subsets=4, subset_size=m, seed=0)
    assert mean == pytest.approx(direct_mmd(fake[:m], real), rel=1e-10)
    assert std == pytest.approx(0, abs=1e-12)   # every subset is the whole set, reordered


def test_subset_size_is_clipped_to_available_images(feats):
    fake, real = feats   # 23 and 17 images: subsets of 17
    mean, _ = kid_from_features(fake, real, num_subsets=3, subset_size=1000, seed=1)
    assert mean == pytest.approx(direct_kid(fake, real, 3, 17, 1)[0], rel=1e-10)


def test_same_distribution_is_near_zero_and_different_is_positive():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (200, 4)), rng.normal(0, 1, (200, 4))
    c = rng.normal(2, 1, (200, 4))
    same, _ = kid_from_features(a, b, num_subsets=20, subset_size=100)
    diff, _ = kid_from_features(a, c, num_subsets=20, subset_size=100)
    assert abs(same) < 0.05 and diff > 1.0


def test_errors():
    x = np.ones((5, 3))
    with pytest.raises(ValueError, match='at least 2 images'):
        kid_from_features(x[:1], x)
    with pytest.raises(ValueError, match='same D'):
        kid_from_features(x, np.ones((5, 4)))
    with pytest.raises(ValueError, match='num_subsets'):
        KID(feature_extractor=TinyFeatureExtractor(), num_subsets=0)


def test_metric_keys_name_the_extractor_and_values_match_the_function():
    g = torch.Generator().manual_seed(0)
    ext = TinyFeatureExtractor(name='tiny-a')
    metric = KID(feature_extractor=ext, num_subsets=5, subset_size=6)
    samples = [dict(fake_img=torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g),
                    gt_img=torch.randint(0, 128, (3, 16, 16), dtype=torch.uint8, generator=g))
               for _ in range(8)]
    metric.process(None, samples[:5])
    metric.process(None, samples[5:])
    out = metric.evaluate(8)
    assert set(out) == {'kid_tiny-a', 'kid_std_tiny-a'}
    fake = ext(torch.stack([s['fake_img'] for s in samples])).double().numpy()
    real = ext(torch.stack([s['gt_img'] for s in samples])).double().numpy()
    mean, std = kid_from_features(fake, real, 5, 6, 0)
    assert out['kid_tiny-a'] == pytest.approx(mean, rel=1e-6)
    assert out['kid_std_tiny-a'] == pytest.approx(std, rel=1e-5, abs=1e-9)
