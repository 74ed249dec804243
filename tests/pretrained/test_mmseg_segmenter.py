"""MMSegSegmenter: a tiny mmseg UNet+FCN from local files, frozen; logits, features, cache key."""
import shutil
import sys
from pathlib import Path

import pytest
import torch

from catgen.pretrained import MMSegSegmenter, build_pretrained, pretrained_cache_key
from catgen.registry import PRETRAINED

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_mmseg import tiny_mmseg  # noqa: E402

CLASSES = ['sand', 'grass', 'flower', 'water']


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return tiny_mmseg(tmp_path_factory.mktemp('seg'), 4, CLASSES, stages=2, bn_spread=0.3)


def test_frozen_logits_and_features(tiny):
    cfg, ckpt = tiny
    seg = PRETRAINED.build(dict(type='MMSegSegmenter', config=str(cfg), checkpoint=str(ckpt)))
    assert seg.classes == CLASSES and seg.num_classes == 4
    seg.train()                                                    # stays frozen
    assert not seg.training and not seg.model.training
    assert not any(p.requires_grad for p in seg.parameters())
    img = torch.randint(0, 256, (2, 3, 16, 24), dtype=torch.uint8,
                        generator=torch.Generator().manual_seed(0))
    logits = seg(img)
    assert logits.shape == (2, 4, 16, 24) and logits.dtype == torch.float32
    # the same as mmseg's own predict on BGR input
    from mmseg.structures import SegDataSample
    samples = [SegDataSample(metainfo=dict(img_shape=(16, 24), ori_shape=(16, 24)))
               for _ in range(2)]
    data = seg.model.data_preprocessor(dict(inputs=list(img[:, [2, 1, 0]]),
                                            data_samples=samples), False)
    with torch.no_grad():
        ref = seg.model.predict(data['inputs'], data['data_samples'])
    torch.testing.assert_close(logits.argmax(1), torch.stack(
        [r.pred_sem_seg.data[0] for r in ref]))
    maps = seg.feature_maps(img)
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 8, 12), (4, 16, 24)]
    torch.testing.assert_close(seg.feature_map(img), maps[-1])


def test_cache_key_is_the_content_hash_and_known_without_building(tiny, tmp_path):
    cfg, ckpt = tiny
    spec = dict(type='mmseg', config=str(cfg), checkpoint=str(ckpt))
    key = pretrained_cache_key(spec)                               # no model built
    seg = build_pretrained(spec)
    assert isinstance(seg, MMSegSegmenter) and seg.cache_key() == key
    copy = tmp_path / 'moved.pth'
    shutil.copy(ckpt, copy)
    assert pretrained_cache_key(dict(spec, checkpoint=str(copy))) == key
    assert pretrained_cache_key(dict(spec, input_order='rgb')) != key
    assert pretrained_cache_key(dict(spec, index=0)) != key        # the configs' alias
    sd = torch.load(ckpt, weights_only=True)
    name = next(k for k in sd['state_dict'] if k.endswith('conv_seg.bias'))
    sd['state_dict'][name] = sd['state_dict'][name] + 1
    torch.save(sd, copy)
    assert pretrained_cache_key(dict(spec, checkpoint=str(copy))) != key
    assert pretrained_cache_key(dict(spec, checkpoint=str(tmp_path / 'none.pth'))) is None


def test_errors_say_what_to_do(tiny, tmp_path):
    cfg, ckpt = tiny
    with pytest.raises(FileNotFoundError, match=r'none.pth.*tools/train_segmenter.py'):
        MMSegSegmenter(str(cfg), str(tmp_path / 'none.pth'))
    with pytest.raises(FileNotFoundError, match=r'config not found: .*x.py'):
        MMSegSegmenter(str(tmp_path / 'x.py'), str(ckpt))
    with pytest.raises(ValueError, match='needs config='):
        MMSegSegmenter(None, str(ckpt))
    with pytest.raises(ValueError, match='input_order'):
        MMSegSegmenter(str(cfg), str(ckpt), input_order='hsv')
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': torch.load(ckpt, weights_only=True)['state_dict'],
                'meta': {'dataset_meta': {'classes': ['a', 'b']}}}, bad)
    with pytest.raises(ValueError, match='4 outputs but its dataset_meta names 2'):
        MMSegSegmenter(str(cfg), str(bad))
