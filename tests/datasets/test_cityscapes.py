"""CityscapesDataset: city sub-folders, labelIds as is, optional instance edges."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from PIL import Image

from catgen.datasets import CityscapesDataset
from catgen.datasets.transforms.loading import instance_edges
from catgen.models.data_preprocessors import SISDataPreprocessor

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
            dict(type='Resize', scale=(8, 4)), dict(type='PackSISInputs')]


def make_cityscapes(root, split='train'):
    frames = [('aachen', 'aachen_000000_000019'), ('bremen', 'bremen_000001_000019')]
    inst = np.zeros((8, 16), np.uint16)
    inst[:, 8:] = 26001  # two car instances side by side, 7 = road elsewhere
    inst[:, 12:] = 26002
    inst[:2] = 7
    lab = np.where(inst > 1000, 26, 7).astype(np.uint8)
    lab[0, 0] = 33
    for city, frame in frames:
        (root / 'leftImg8bit' / split / city).mkdir(parents=True, exist_ok=True)
        (root / 'gtFine' / split / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(
            root / 'leftImg8bit' / split / city / f'{frame}_leftImg8bit.png')
        gt = root / 'gtFine' / split / city
        Image.fromarray(lab).save(gt / f'{frame}_gtFine_labelIds.png')
        Image.fromarray(inst).save(gt / f'{frame}_gtFine_instanceIds.png')
        Image.fromarray(lab).save(gt / f'{frame}_gtFine_color.png')  # ignored
    return lab, inst


def test_layout_and_ids(tmp_path):
    lab, _ = make_cityscapes(tmp_path)
    ds = CityscapesDataset(str(tmp_path), split='train', pipeline=PIPELINE, serialize_data=False)
    m = ds.metainfo
    assert m['num_classes'] == 35 and len(m['classes']) == 35 and len(m['palette']) == 35
    assert m['classes'][0] == 'unlabeled' and m['classes'][7] == 'road'
    assert m['classes'][26] == 'car' and m['classes'][33] == 'bicycle'
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == \
        ['aachen/aachen_000000_000019', 'bremen/bremen_000001_000019']
    out = ds[0]
    label = out['inputs']['label'].numpy()
    assert label.shape == (4, 8) and set(np.unique(label)) <= {7, 26, 33}
    assert 'edges' not in out['inputs']


def test_instance_edges(tmp_path):
    _, inst = make_cityscapes(tmp_path)
    pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
                dict(type='PackSISInputs')]
    ds = CityscapesDataset(str(tmp_path), with_instance_edges=True, pipeline=pipeline,
                           serialize_data=False)
    out = ds[1]
    edges = out['inputs']['edges']
    assert edges.dtype == torch.uint8 and edges.shape == (8, 16)
    np.testing.assert_array_equal(edges.numpy(), instance_edges(inst))
    assert edges[5, 7] == 1 and edges[5, 8] == 1 and edges[5, 11] == 1 and edges[5, 3] == 0
    assert edges[1, 3] == 1 and edges[2, 3] == 1 and edges[0, 3] == 0
    batch = SISDataPreprocessor(num_classes=35)(pseudo_collate([ds[0], ds[1]]))
    assert batch['inputs']['edges'].shape == (2, 1, 8, 16)
    assert batch['inputs']['seg'].shape == (2, 35, 8, 16)


def test_edges_follow_resize(tmp_path):
    make_cityscapes(tmp_path)
    ds = CityscapesDataset(str(tmp_path), with_instance_edges=True, pipeline=PIPELINE,
                           serialize_data=False)
    edges = ds[0]['inputs']['edges'].numpy()
    assert edges.shape == (4, 8)
    # recomputed on the 4x8 instance map: one-pixel boundaries at the new size
    assert edges[3].tolist() == [0, 0, 0, 1, 1, 1, 1, 0]


def test_missing_instance_map(tmp_path):
    make_cityscapes(tmp_path)
    inst = tmp_path / 'gtFine' / 'train' / 'bremen' / 'bremen_000001_000019_gtFine_instanceIds.png'
    inst.unlink()
    assert len(CityscapesDataset(str(tmp_path), serialize_data=False)) == 2
    with pytest.raises(FileNotFoundError) as e:
        CityscapesDataset(str(tmp_path), with_instance_edges=True)
    assert str(inst) in str(e.value) and 'with_instance_edges=False' in str(e.value)


def test_missing_root_and_label(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        CityscapesDataset(str(tmp_path / 'cityscapes'), split='val')
    msg = str(e.value)
    assert 'leftImg8bit/val/<city>' in msg and '_gtFine_labelIds.png' in msg
    make_cityscapes(tmp_path / 'cs')
    (tmp_path / 'cs' / 'gtFine' / 'train' / 'aachen' /
     'aachen_000000_000019_gtFine_labelIds.png').unlink()
    with pytest.raises(FileNotFoundError,
                       match='aachen_000000_000019_leftImg8bit.png has no label'):
        CityscapesDataset(str(tmp_path / 'cs'))


def test_with_instance_in_the_loading_transform_feeds_the_edge_channel(tmp_path):
    """SPADE's Cityscapes set-up: LoadSISAnnotations(with_instance=True) on the data set, the
    data preprocessor appends the edge channel: 35 + 1 channels."""
    _, inst = make_cityscapes(tmp_path)
    pipeline = [dict(type='LoadSISImageFromFile'),
                dict(type='LoadSISAnnotations', with_instance=True),
                dict(type='PackSISInputs')]
    ds = CityscapesDataset(str(tmp_path), pipeline=pipeline, serialize_data=False)
    info = ds.get_data_info(0)
    assert info['instance_path'].endswith('aachen/aachen_000000_000019_gtFine_instanceIds.png')
    assert 'with_instance' not in info  # read because the transform asks
    pre = SISDataPreprocessor(num_classes=35, instance_edges=True)
    seg = pre(pseudo_collate([ds[0], ds[1]]))['inputs']['seg']
    assert seg.shape == (2, 36, 8, 16)
    np.testing.assert_array_equal(seg[1, 35].numpy(), instance_edges(inst))
    # the one-hot part is the label map's: car (26) right of column 8, road (7) elsewhere
    assert seg[1, 26, 5, 9] == 1 and seg[1, 7, 5, 3] == 1 and seg[1, :35].sum(0).eq(1).all()
    # without with_instance nothing is read, even though every sample names its instance map
    plain = CityscapesDataset(str(tmp_path), pipeline=PIPELINE, serialize_data=False)[0]
    assert 'edges' not in plain['inputs']
