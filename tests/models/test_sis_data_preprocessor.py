"""SISDataPreprocessor: normalisation, one-hot, ignore pixels, label checks, and a full
folder data set -> pipeline -> pseudo_collate -> preprocessor round trip."""
import json

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from catgen.models.data_preprocessors import SISDataPreprocessor
from catgen.registry import DATASETS, MODELS
from catgen.structures import SISDataSample


def batch(labels, imgs=None, paths=None):
    if imgs is None:
        imgs = [torch.zeros(3, *lab.shape, dtype=torch.uint8) for lab in labels]
    paths = paths or [f'lab{i}.png' for i in range(len(labels))]
    return {'inputs': {'img': list(imgs), 'label': list(labels)},
            'data_samples': [SISDataSample(metainfo=dict(seg_map_path=p)) for p in paths]}


def test_normalise_and_one_hot():
    pre = MODELS.build(dict(type='SISDataPreprocessor', num_classes=4))
    assert isinstance(pre, SISDataPreprocessor)
    img = torch.tensor([0, 255, 51], dtype=torch.uint8).view(3, 1, 1).expand(3, 2, 2).clone()
    lab = torch.tensor([[0, 3], [255, 1]])
    out = pre(batch([lab, lab.flip(0)], imgs=[img, img]))
    x = out['inputs']
    assert x['img'].dtype == torch.float32 and x['img'].shape == (2, 3, 2, 2)
    assert torch.allclose(x['img'][0, :, 0, 0], torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    assert x['label'].dtype == torch.int64 and torch.equal(x['label'][0], lab)
    seg = x['seg']
    assert seg.dtype == torch.float32 and seg.shape == (2, 4, 2, 2)
    assert torch.equal(seg[0, :, 0, 0], torch.tensor([1.0, 0, 0, 0]))
    assert torch.equal(seg[0, :, 0, 1], torch.tensor([0.0, 0, 0, 1]))
    assert torch.equal(seg[0, :, 1, 0], torch.zeros(4))  # ignore_index=255: all zero
    assert torch.equal(seg.argmax(1)[0, 1, 1], torch.tensor(1))
    assert len(out['data_samples']) == 2


def test_per_channel_mean_std_and_stacked_input():
    pre = SISDataPreprocessor(num_classes=2, mean=[0, 0, 0], std=[255, 255, 255])
    img = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    out = pre({'inputs': {'img': img, 'label': torch.zeros(1, 2, 2, dtype=torch.long)},
               'data_samples': None})
    assert torch.allclose(out['inputs']['img'], torch.ones(1, 3, 2, 2))
    with pytest.raises(ValueError, match='3 values'):
        SISDataPreprocessor(num_classes=2, mean=[1, 2])


def test_label_only_batch():
    out = SISDataPreprocessor(num_classes=3)({'inputs': {'label': [torch.ones(2, 2).long()]}})
    assert 'img' not in out['inputs'] and out['inputs']['seg'][0, 1].sum() == 4


def test_bad_ids_name_the_file():
    pre = SISDataPreprocessor(num_classes=4)
    good, bad = torch.zeros(2, 2).long(), torch.tensor([[0, 4], [7, 255]])
    with pytest.raises(ValueError) as e:
        pre(batch([good, bad], paths=['ok.png', 'data/ann/bad_one.png']))
    msg = str(e.value)
    assert 'data/ann/bad_one.png' in msg and '4, 7' in msg and '[0, 4)' in msg
    assert 'ok.png' not in msg
    with pytest.raises(ValueError, match=r'-1 outside'):
        pre(batch([torch.full((2, 2), -1)]))


def test_sizes_must_match():
    pre = SISDataPreprocessor(num_classes=4)
    with pytest.raises(ValueError, match=r'share one size.*Resize'):
        pre(batch([torch.zeros(2, 2).long(), torch.zeros(3, 2).long()]))
    with pytest.raises(ValueError, match='do not match'):
        pre(batch([torch.zeros(2, 2).long()], imgs=[torch.zeros(3, 4, 4, dtype=torch.uint8)]))


def test_round_trip_from_folder_dataset(tmp_path):
    root = tmp_path / 'mydata'
    (root / 'images' / 'train').mkdir(parents=True)
    (root / 'annotations' / 'train').mkdir(parents=True)
    (root / 'classes.json').write_text(json.dumps({'classes': ['sky', 'grass', 'water']}))
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(
            root / 'images' / 'train' / f'{i}.jpg')
        lab = rng.integers(0, 3, (12, 10)).astype(np.uint8)
        lab[:2] = 255
        Image.fromarray(lab).save(root / 'annotations' / 'train' / f'{i}.png')
    pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
                dict(type='Resize', short_side=10), dict(type='RandomCrop', crop_size=8),
                dict(type='RandomFlip', prob=0.5), dict(type='PackSISInputs')]
    ds = DATASETS.build(dict(type='FolderSISDataset', data_root=str(root), num_shots=2,
                             pipeline=pipeline, serialize_data=False))
    num_classes = ds.metainfo['num_classes']
    assert num_classes == 4 and len(ds) == 2
    pre = MODELS.build(dict(type='SISDataPreprocessor', num_classes=num_classes))
    out = pre(pseudo_collate([ds[0], ds[1]]), training=True)
    img, label, seg = out['inputs']['img'], out['inputs']['label'], out['inputs']['seg']
    assert img.shape == (2, 3, 8, 8) and label.shape == (2, 8, 8) and seg.shape == (2, 4, 8, 8)
    assert img.min() >= -1 and img.max() <= 1
    assert torch.equal(seg.sum(1), torch.ones(2, 8, 8))  # 255 became channel 0 at loading
    assert torch.equal(seg.argmax(1), label)
    assert [s.img_shape for s in out['data_samples']] == [(8, 8), (8, 8)]
    assert all(s.seg_map_path.startswith(str(root)) for s in out['data_samples'])


def test_instance_edges_are_concatenated_after_the_classes():
    lab = torch.tensor([[0, 3], [255, 1]])
    edges = torch.tensor([[1, 0], [0, 1]], dtype=torch.uint8)
    data = batch([lab, lab])
    data['inputs']['edges'] = [edges, 1 - edges]
    plain = SISDataPreprocessor(num_classes=4)(data)['inputs']
    assert plain['seg'].shape == (2, 4, 2, 2) and plain['edges'].shape == (2, 1, 2, 2)
    pre = SISDataPreprocessor(num_classes=4, instance_edges=True)
    assert pre.extra_label_channels == 1
    out = pre(data)['inputs']
    assert out['seg'].shape == (2, 5, 2, 2) and out['seg'].dtype == torch.float32
    assert torch.equal(out['seg'][:, :4], plain['seg'])  # the one-hot channels are unchanged
    assert torch.equal(out['seg'][0, 4], edges.float())
    assert torch.equal(out['seg'][1, 4], 1 - edges.float())
    assert SISDataPreprocessor(num_classes=4).extra_label_channels == 0
    with pytest.raises(KeyError, match='with_instance=True'):
        pre(batch([lab]))
    data['inputs']['edges'] = [torch.zeros(3, 2, dtype=torch.uint8)] * 2
    with pytest.raises(ValueError, match='edge maps'):
        pre(data)
