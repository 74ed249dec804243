"""InceptionV3FeatureExtractor: pytorch-fid's network and preprocessing, weights from a local
file only (explicit path or torch hub's cache name), eval mode, safe loading, clear errors."""
import hashlib
import warnings

import numpy as np
import pytest
import torch

from catgen.evaluation.feature_extractors import InceptionV3FeatureExtractor
from catgen.evaluation.feature_extractors import inception_v3 as inception_module
from catgen.evaluation.feature_extractors.inception_v3 import (FID_WEIGHTS_FILENAME,
                                                               write_random_inception_weights)
from catgen.registry import MODELS
from catgen.utils.checkpoint import CheckpointMismatchError, UnsafeCheckpointError


@pytest.fixture(scope='module')
def torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds seeded random FID-Inception weights."""
    home = tmp_path_factory.mktemp('torch_home')
    write_random_inception_weights(home / 'hub' / 'checkpoints' / FID_WEIGHTS_FILENAME, seed=0,
                                   calibration_images=2)
    return home


@pytest.fixture
def hub_weights(torch_home, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(torch_home))
    return torch_home / 'hub' / 'checkpoints' / FID_WEIGHTS_FILENAME


def build(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)   # random weights: "not the official file"
        return InceptionV3FeatureExtractor(**kwargs)


def images(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g)


@pytest.mark.slow
def test_features_equal_pytorch_fid_inception_from_the_hub_cache(hub_weights):
    """pytorch-fid's InceptionV3 loads the same file from the hub cache (no network); its
    ToTensor + resize-299 + 2x-1 preprocessing gives the same features bit for bit without the
    speed-ups and to float rounding with them."""
    from pytorch_fid.inception import InceptionV3
    x = images()
    ref_net = InceptionV3([3]).eval()
    with torch.no_grad():
        ref = ref_net(x.float().div(255))[0].flatten(1)   # what ToTensor gives for the PNGs
    plain = build(fuse_bn=False, channels_last=False)
    assert plain.weights == str(hub_weights)
    torch.testing.assert_close(plain(x), ref, rtol=0, atol=0)
    fast = build()
    out = fast(x)
    assert out.shape == (3, 2048) and out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-4)
    assert (out.std(0) > 0).any()  # calibrated random weights: features depend on the image


def test_explicit_path_registry_and_eval_mode(hub_weights):
    ext = MODELS.build(dict(type='InceptionV3FeatureExtractor', weights=str(hub_weights)))
    assert ext.feature_dim == 2048
    ext.train()
    assert not ext.training and not any(m.training for m in ext.modules())
    assert not any(p.requires_grad for p in ext.parameters())
    with pytest.raises(ValueError, match=r'uint8 Tensor\[B, 3, H, W\]'):
        ext(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match='uint8'):
        ext(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))


def test_name_is_inception_only_for_the_official_file(hub_weights, monkeypatch):
    sha = hashlib.sha256(hub_weights.read_bytes()).hexdigest()
    with pytest.warns(UserWarning, match=f'sha256 starts with {sha[:8]}, not 6726825d'):
        other = InceptionV3FeatureExtractor()
    assert other.name == f'inception-{sha[:8]}' and not other.is_standard
    assert other.metric_key('fid') == f'fid_inception-{sha[:8]}'
    assert other.cache_key()['weights_sha256'] == sha
    # pretend the file is the official one (its sha256 starts with the hub name's prefix)
    monkeypatch.setattr(inception_module, 'FID_WEIGHTS_SHA256_PREFIX', sha[:8])
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        official = InceptionV3FeatureExtractor()
    assert official.name == 'inception' and official.is_standard
    assert official.metric_key('fid') == 'fid' and official.metric_key('kid_std') == 'kid_std'


def test_missing_weights_name_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'empty_home'))
    expected = tmp_path / 'empty_home' / 'hub' / 'checkpoints' / FID_WEIGHTS_FILENAME
    with pytest.raises(FileNotFoundError) as err:
        InceptionV3FeatureExtractor()
    msg = str(err.value)
    assert str(expected) in msg and 'TORCH_HOME' in msg and 'github.com/mseitzer' in msg
    with pytest.raises(FileNotFoundError, match='weights='):
        InceptionV3FeatureExtractor(weights=tmp_path / 'nope.pth')


class Payload:
    """Any class outside the allowlist: unpickling it could run code."""


def test_weights_are_loaded_with_weights_only(tmp_path):
    bad = tmp_path / 'evil.pth'
    torch.save({'conv.weight': torch.zeros(1), 'x': Payload()}, bad)
    with pytest.raises(UnsafeCheckpointError, match='weights_only'):
        build(weights=bad)
    wrong = tmp_path / 'wrong.pth'
    torch.save({'Conv2d_1a_3x3.conv.weight': torch.zeros(3, 3, 3, 3)}, wrong)
    with pytest.raises(CheckpointMismatchError, match='missing'):
        build(weights=wrong)


def test_features_do_not_depend_on_batch_composition(hub_weights):
    ext = build()
    x = images(2, seed=1)
    both = ext(x)
    np.testing.assert_allclose(ext(x[1:]).numpy(), both[1:].numpy(), rtol=1e-3, atol=1e-4)
