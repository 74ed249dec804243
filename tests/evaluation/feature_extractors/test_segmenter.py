"""SegmenterFeatureExtractor: a tiny mmseg UNet+FCN with random weights, built from a config
file and a local checkpoint; pooled deepest backbone feature through the segmentor's own data
preprocessor, names and keys, errors."""
import pytest
import torch

from catgen.evaluation.feature_extractors import SegmenterFeatureExtractor
from catgen.registry import MODELS

TINY_MMSEG = """
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[120.0, 110.0, 100.0],
                           std=[60.0, 50.0, 40.0], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='UNet', in_channels=3, base_channels=4, num_stages=3, strides=(1, 1, 1),
                  enc_num_convs=(1, 1, 1), dec_num_convs=(1, 1), downsamples=(True, True),
                  enc_dilations=(1, 1, 1), dec_dilations=(1, 1), norm_cfg=norm_cfg),
    decode_head=dict(type='FCNHead', in_channels=4, in_index=2, channels=4, num_convs=1,
                     concat_input=False, num_classes=4, norm_cfg=norm_cfg, align_corners=False),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
"""


@pytest.fixture(scope='module')
def tiny_segmenter(tmp_path_factory):
    """(config path, checkpoint path) of a tiny mmseg segmentor with seeded random weights."""
    from catgen.utils.setup_env import guarded_default_scope, setup_env
    setup_env()
    root = tmp_path_factory.mktemp('tiny_seg')
    cfg = root / 'tiny_unet-fcn.py'
    cfg.write_text(TINY_MMSEG)
    with guarded_default_scope(None):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS as MMSEG_MODELS
        init_default_scope('mmseg')
        torch.manual_seed(0)
        model = MMSEG_MODELS.build(Config.fromfile(cfg).model)
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    ckpt = root / 'tiny.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return cfg, ckpt


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
    assert b['checkpoint_sha256'] != a['checkpoint_sha256']
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
