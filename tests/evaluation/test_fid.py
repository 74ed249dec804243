"""FID: the Frechet distance against pytorch-fid (its own numpy/scipy formula on small features,
and its whole calculate_fid_given_paths on two image folders with the same random Inception
weights), output keys, errors."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from catgen.evaluation.metrics import FID
from catgen.evaluation.metrics.fid import fid_from_features

sys.path.insert(0, str(Path(__file__).resolve().parent / 'feature_extractors'))
from tiny_extractor import TinyFeatureExtractor  # noqa: E402


def pytorch_fid_formula(a, b):
    from pytorch_fid.fid_score import calculate_frechet_distance
    return calculate_frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                      b.mean(0), np.cov(b, rowvar=False))


@pytest.mark.parametrize('n_a,n_b', [(60, 50), (5, 7), (40, 6), (3, 30)])
def test_frechet_distance_equals_pytorch_fid_formula(n_a, n_b):
    """More images than dims, fewer (singular covariances), and mixed."""
    rng = np.random.default_rng(n_a * 100 + n_b)
    mix = rng.normal(size=(12, 12))
    a = np.abs(rng.normal(0.3, 1, (n_a, 12)) @ mix)
    b = np.abs(rng.normal(0.0, 1.2, (n_b, 12)) @ mix) + 0.5
    ours, ref = fid_from_features(a, b), pytorch_fid_formula(a, b)
    assert ours == pytest.approx(ref, rel=1e-7)
    assert fid_from_features(b, a) == pytest.approx(ours, rel=1e-10)


def test_identical_sets_give_zero_and_shift_gives_squared_norm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(30, 5))
    assert fid_from_features(a, a) == pytest.approx(0, abs=1e-9)
    # same covariance, mean shifted by v: FID = |v|^2
    v = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert fid_from_features(a + v, a) == pytest.approx(float(v @ v), rel=1e-9)


def test_errors_say_what_is_needed():
    with pytest.raises(ValueError, match='at least two images'):
        fid_from_features(np.ones((1, 4)), np.ones((5, 4)))
    with pytest.raises(ValueError, match='NaN'):
        fid_from_features(np.full((3, 4), np.nan), np.ones((5, 4)))
    with pytest.raises(TypeError, match='feature_extractor'):
        FID(feature_extractor=torch.nn.Identity())
    metric = FID(feature_extractor=TinyFeatureExtractor())
    with pytest.raises(KeyError, match='fake_img'):
        metric.process(None, [dict(gt_img=torch.zeros(3, 8, 8, dtype=torch.uint8))])
    with pytest.raises(KeyError, match='GenValLoop'):
        metric.process(None, [dict(fake_img=torch.zeros(3, 8, 8, dtype=torch.uint8))])


def _samples(n, k=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (k, 3, 16, 16) if k > 1 else (3, 16, 16)
    return [dict(fake_img=torch.randint(0, 256, shape, dtype=torch.uint8, generator=g),
                 gt_img=torch.randint(0, 200, (3, 16, 16), dtype=torch.uint8, generator=g))
            for _ in range(n)]


def test_metric_uses_fake_and_gt_features_and_names_its_key():
    ext = TinyFeatureExtractor(name='tiny-b')
    metric = FID(feature_extractor=ext)
    samples = _samples(6)
    metric.process(None, samples)
    out = metric.evaluate(6)
    assert list(out) == ['fid_tiny-b']
    fake = ext(torch.stack([s['fake_img'] for s in samples])).double().numpy()
    real = ext(torch.stack([s['gt_img'] for s in samples])).double().numpy()
    assert out['fid_tiny-b'] == pytest.approx(fid_from_features(fake, real), rel=1e-6)
    assert FID(feature_extractor=ext, prefix='val').key('fid') == 'fid_tiny-b'
    metric = FID(feature_extractor=ext, prefix='val')
    metric.process(None, samples)
    assert list(metric.evaluate(6)) == ['val/fid_tiny-b']


def test_k_samples_per_map_first_or_all():
    ext = TinyFeatureExtractor()
    samples = _samples(4, k=3)
    first, every = FID(feature_extractor=ext), FID(feature_extractor=ext, use_all_samples=True)
    first.process(None, samples)
    every.process(None, samples)
    assert [r['fake'].shape for r in first.results] == [(1, 16)] * 4
    assert [r['fake'].shape for r in every.results] == [(3, 16)] * 4
    only_first = [dict(s, fake_img=s['fake_img'][0]) for s in samples]
    ref = FID(feature_extractor=ext)
    ref.process(None, only_first)
    ref_out = ref.evaluate(4)
    assert first.evaluate(4) == ref_out
    assert every.evaluate(4)['fid_tiny'] != pytest.approx(ref_out['fid_tiny'])


def _write_folder(path, n, kind, seed):
    path.mkdir()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    for i in range(n):
        if kind == 'noise':
            arr = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        else:  # smooth colour gradients
            c = rng.uniform(0, 1, (2, 3))
            arr = (255 * (c[0] * xx[..., None] + c[1] * yy[..., None]) / 2).astype(np.uint8)
        Image.fromarray(arr).save(path / f'{i:03d}.png')


@pytest.mark.slow
def test_fid_equals_pytorch_fid_on_folders_with_the_same_weights(tmp_path, monkeypatch):
    """Seeded random FID-Inception weights in a tmp TORCH_HOME's hub cache, where pytorch-fid
    looks for them (so it loads them without network) and where the extractor finds them by
    default; 20 + 20 images 64 x 64 that both resize to 299. pytorch-fid's sqrtm of a 2048 x 2048
    matrix makes this test slow (~30-60 s on one core)."""
    from pytorch_fid.fid_score import calculate_fid_given_paths

    from catgen.evaluation.feature_extractors.inception_v3 import (
        default_inception_weights, write_random_inception_weights)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    weights = write_random_inception_weights(default_inception_weights(), seed=0,
                                             calibration_images=4)
    assert weights == tmp_path / 'torch_home/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth'
    _write_folder(tmp_path / 'a', 20, 'noise', 1)
    _write_folder(tmp_path / 'b', 20, 'gradient', 2)

    ref = calculate_fid_given_paths([str(tmp_path / 'a'), str(tmp_path / 'b')], batch_size=10,
                                    device='cpu', dims=2048, num_workers=0)

    with pytest.warns(UserWarning, match='not the official FID Inception'):
        metric = FID()   # default extractor: the hub-cache file above
    name = metric.extractor.name
    assert name.startswith('inception-') and metric.extractor.is_standard is False

    def load(path):
        return torch.from_numpy(np.array(Image.open(path).convert('RGB'))).permute(2, 0, 1)

    samples = [dict(fake_img=load(fa), gt_img=load(fb)) for fa, fb in
               zip(sorted((tmp_path / 'a').glob('*.png')), sorted((tmp_path / 'b').glob('*.png')))]
    for i in range(0, 20, 8):
        metric.process(None, samples[i:i + 8])
    out = metric.evaluate(20)
    assert list(out) == [f'fid_{name}']
    assert ref > 1e-3
    assert abs(out[f'fid_{name}'] - ref) / ref < 1e-3
