import numpy as np
import pytest

from catgen.evaluation.metrics import SpectralArtifacts
from catgen.evaluation.metrics.spectral_artifacts import (band_masks, power_spectrum,
                                                          spectral_artifact_scores)


def natural_images(n, size=64, seed=0):
    """Smooth random images with some fine texture: uint8[n, 3, size, size]."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 1, size // 8, size // 8)).repeat(8, 2).repeat(8, 3)
    img = 128 + 40 * base + 10 * rng.normal(size=(n, 3, size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def run_metric(fakes, reals, **kwargs):
    metric = SpectralArtifacts(**kwargs)
    label = np.ones(fakes.shape[2:], np.int64)
    for i in range(0, len(fakes), 4):  # batches of 4
        metric.process({}, [dict(fake_img=f, gt_img=r, gt_label=label)
                            for f, r in zip(fakes[i:i + 4], reals[i:i + 4])])
    return metric.compute_metrics(metric.results)


def test_power_spectrum_by_hand():
    flat = np.full((3, 8, 8), 77, np.uint8)
    assert np.allclose(power_spectrum(flat), 0)  # the mean is removed
    # a cosine at 1/4 cycle per pixel along x puts its energy at f_x = +-1/4, f_y = 0
    x = np.arange(16)
    img = np.broadcast_to(128 + 100 * np.cos(2 * np.pi * x / 4), (3, 16, 16))
    p = power_spectrum(img)
    top = np.argsort(p.ravel())[-2:]
    assert sorted(np.unravel_index(top, p.shape)[1].tolist()) == [4, 12]
    assert set(np.unravel_index(top, p.shape)[0].tolist()) == {0}
    high, axis = band_masks(16, 16, 0.25)
    assert high[0, 4] and axis[0, 4] and not high[0, 3] and not axis[4, 4] and high[4, 4]


def test_same_distribution_scores_neutral_and_stripes_are_caught():
    reals = natural_images(32, seed=0)
    same = run_metric(natural_images(32, seed=1), reals)
    assert abs(same['hf_ratio'] - 1) < 0.1
    # the maximum over ~3,000 bins of a ratio of two 32-image means: a few dB of noise
    assert same['max_excess_db'] < 5 and same['axis_excess_db'] < 5
    # thin horizontal lines every 2 rows over the top quarter, as CAT's border artefact
    striped = natural_images(32, seed=1).astype(np.int32)
    striped[:, :, 0:16:2] += 40
    striped = np.clip(striped, 0, 255).astype(np.uint8)
    bad = run_metric(striped, reals)
    assert bad['axis_excess_db'] > 10 and bad['hf_ratio'] > same['hf_ratio']
    # blur loses fine detail: less high-frequency energy than real
    blurred = natural_images(32, seed=1).astype(np.float64)
    blurred = (blurred + np.roll(blurred, 1, 2) + np.roll(blurred, 1, 3)
               + np.roll(blurred, (1, 1), (2, 3))) / 4
    assert run_metric(blurred.astype(np.uint8), reals)['hf_ratio'] < 0.5


def test_scores_from_spectra_and_bad_input():
    real = np.ones((8, 8))
    fake = real.copy()
    fake[0, 4] = 100.0  # f = (0, 1/2): on the axis, in the high band
    s = spectral_artifact_scores(fake, real)
    assert s['max_excess_db'] == pytest.approx(20.0) and s['axis_excess_db'] == pytest.approx(20)
    high, _ = band_masks(8, 8, 0.25)
    assert s['hf_ratio'] == pytest.approx((high.sum() - 1 + 100) / high.sum())
    with pytest.raises(ValueError, match='cutoff must be in'):
        SpectralArtifacts(cutoff=0.9)
    with pytest.raises(ValueError, match='one size'):
        SpectralArtifacts().compute_metrics([dict(fake=np.ones((4, 4)), real=np.ones((4, 4)), n=1),
                                             dict(fake=np.ones((8, 8)), real=np.ones((8, 8)), n=1)])
