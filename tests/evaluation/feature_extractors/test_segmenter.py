"""SegmenterFeatureExtractor: a tiny mmseg UNet+FCN with random weights, built from a config
file and a local checkpoint; pooled deepest backbone feature through the segmentor's own data
preprocessor, names and keys, errors."""
import sys
from pathlib import Path

import pytest
import torch

from catgen.evaluation.feature_extractors import SegmenterFeatureExtractor
from catgen.registry import MODELS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tiny_mmseg import tiny_mmseg  # noqa: E402


@pytest.fixture(scope='module')
def tiny_segmenter(tmp_path_factory):
    """(config path, checkpoint path) of a tiny mmseg segmentor with seeded random weights."""
    from catgen.utils.setup_env import setup_env
    setup_env()
    return tiny_mmseg(tmp_path_factory.mktemp('tiny_seg'), stages=3, bn_spread=0.2,
                      name='tiny_unet-fcn')


def test_pooled_deepest_feature_through_the_segmentors_preprocessor(tiny_segmenter):
    cfg, ckpt = tiny_segmenter
    ext = MODELS.build(dict(type='SegmenterFeatureExtractor', config=str(cfg),
                            checkpoint=str(ckpt)))
    assert ext.name == 'seg-tiny_unet-fcn' and not ext.is_standard
    assert ext.metric_key('fid') == 'fid_seg-tiny_unet-fcn'
    assert ext.metric_key('kid_std') == 'kid_std_seg-tiny_unet-fcn'
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=g)
    out = ext(img)
    # by hand: RGB -> BGR (as LoadImageFromFile) -> the preprocessor's bgr_to_rgb gives RGB back;
    # normalise; the UNet bottleneck (lowest resolution: 4 ch x 2 downsamplings = 16 ch, 8x8)
    mean = torch.tensor([120.0, 110.0, 100.0])[:, None, None]
    std = torch.tensor([60.0, 50.0, 40.0])[:, None, None]
    x = (img.float() - mean) / std
    with torch.no_grad():
        outs = ext.model.backbone(x)
    assert [tuple(o.shape[1:]) for o in outs] == [(16, 8, 8), (8, 16, 16), (4, 32, 32)]
    torch.testing.assert_close(out, outs[0].mean(dim=(2, 3)))
    assert ext.feature_dim == 16
    last = SegmenterFeatureExtractor(str(cfg), str(ckpt), name='seg-last', feature_index=-1)
    torch.testing.assert_close(last(img), outs[-1].mean(dim=(2, 3)))
    rgb = SegmenterFeatureExtractor(str(cfg), str(ckpt), input_order='rgb')
    assert not torch.allclose(rgb(img), out)  # channels swapped before the preprocessor


def test_cache_key_follows_checkpoint_config_and_settings(tiny_segmenter, tmp_path):
    cfg, ckpt = tiny_segmenter
    a = SegmenterFeatureExtractor(str(cfg), str(ckpt)).cache_key()
    assert a == SegmenterFeatureExtractor(str(cfg), str(ckpt)).cache_key()
    sd = torch.load(ckpt, weights_only=True)
    key = next(k for k in sd['state_dict'] if k.endswith('conv.weight'))
    sd['state_dict'][key] = sd['state_dict'][key] + 1
    other = tmp_path / 'other.pth'
    torch.save(sd, other)
    b = SegmenterFeatureExtractor(str(cfg), str(other)).cache_key()
    sha = lambda key: key['segmenter']['checkpoint']['file_sha256']  # noqa: E731
    assert sha(b) != sha(a)
    # the key is the shared mmseg wrapper's: a copy of the checkpoint elsewhere keys the same
    import shutil
    copy = tmp_path / 'copy.pth'
    shutil.copy(ckpt, copy)
    assert SegmenterFeatureExtractor(str(cfg), str(copy)).cache_key() == a
    from catgen.pretrained import MMSegSegmenter
    assert a['segmenter'] == MMSegSegmenter.key_from_args(
        config=str(cfg), checkpoint=str(ckpt), feature_index='deepest')
    c = SegmenterFeatureExtractor(str(cfg), str(ckpt), resize=(16, 16)).cache_key()
    assert c != a and c['resize'] == [16, 16]


def test_errors(tiny_segmenter, tmp_path):
    cfg, ckpt = tiny_segmenter
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        SegmenterFeatureExtractor(str(cfg), str(tmp_path / 'missing.pth'))
    with pytest.raises(ValueError, match='needs name'):
        SegmenterFeatureExtractor(dict(model=dict()), str(ckpt))
    with pytest.raises(ValueError, match='input_order'):
        SegmenterFeatureExtractor(str(cfg), str(ckpt), input_order='hsv')
    with pytest.raises(ValueError, match='letters, digits'):
        SegmenterFeatureExtractor(str(cfg), str(ckpt), name='has space/slash')
    ext = SegmenterFeatureExtractor(str(cfg), str(ckpt), feature_index=7)
    with pytest.raises(IndexError, match='3 outputs'):
        ext(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
