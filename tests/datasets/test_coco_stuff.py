"""COCOStuffDataset: COCO-Stuff 164k layout, on-disk 0..181 / 255 shifted into 183 channels."""
import numpy as np
import pytest
import torch
from PIL import Image

from catgen.datasets import COCOStuffDataset

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
            dict(type='PackSISInputs')]


def make_coco(root):
    lab = np.array([[0, 181, 255, 90], [91, 5, 255, 0]], np.uint8)
    for split, stem in (('train2017', '000000000009'), ('val2017', '000000000139')):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(root / 'images' / split / f'{stem}.jpg')
        Image.fromarray(lab).save(root / 'annotations' / split / f'{stem}.png')
    return lab


def test_shift_and_metainfo(tmp_path):
    lab = make_coco(tmp_path / 'coco_stuff164k')
    ds = COCOStuffDataset(str(tmp_path / 'coco_stuff164k'), split='val', pipeline=PIPELINE,
                          serialize_data=False)
    m = ds.metainfo
    assert m['num_classes'] == 183 and len(m['classes']) == 183 and len(m['palette']) == 183
    assert m['classes'][0] == 'unlabeled' and m['classes'][1] == 'person'
    assert m['classes'][12] == 'street sign' and m['classes'][92] == 'banner'
    assert m['classes'][-1] == 'wood' and m['label_shift'] == 1
    out = ds[0]
    assert out['data_samples'].seg_map_path.endswith('val2017/000000000139.png')
    expected = np.array([[1, 182, 0, 91], [92, 6, 0, 1]])
    np.testing.assert_array_equal(out['inputs']['label'].numpy(), expected)
    assert len(COCOStuffDataset(str(tmp_path / 'coco_stuff164k'), split='train2017')) == 1


def test_missing_root_tree(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        COCOStuffDataset(str(tmp_path / 'coco'))
    msg = str(e.value)
    assert 'images/train2017' in msg and 'annotations/val2017' in msg
    assert 'stuffthingmaps_trainval2017.zip' in msg


def test_id_182_rejected(tmp_path):
    make_coco(tmp_path / 'c')
    path = tmp_path / 'c' / 'annotations' / 'train2017' / '000000000009.png'
    Image.fromarray(np.full((2, 4), 182, np.uint8)).save(path)
    ds = COCOStuffDataset(str(tmp_path / 'c'), pipeline=PIPELINE, serialize_data=False)
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert str(path) in msg and ': 182 ' in msg and '0..181' in msg and '255 (ignore)' in msg


def test_instance_maps_from_the_instances_folder(tmp_path):
    """SPADE's COCO-Stuff instance maps (made from COCO's instance annotations) are read from
    instances/<split>/<id>.png with LoadSISAnnotations(with_instance=True)."""
    root = tmp_path / 'coco'
    make_coco(root)
    inst = np.array([[0, 0, 1, 1], [0, 0, 1, 2]], np.uint8)
    (root / 'instances' / 'val2017').mkdir(parents=True)
    Image.fromarray(inst).save(root / 'instances' / 'val2017' / '000000000139.png')
    pipeline = [dict(type='LoadSISImageFromFile'),
                dict(type='LoadSISAnnotations', with_instance=True),
                dict(type='PackSISInputs')]
    ds = COCOStuffDataset(str(root), split='val', pipeline=pipeline, serialize_data=False)
    edges = ds[0]['inputs']['edges']
    # 0|1 boundary at columns 1-2; the 1 above the 2 in column 3 makes both edges
    expected = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.uint8)
    assert torch.equal(edges, expected)
    # the train split has no instance maps: asked for, that is an error naming the file
    train = COCOStuffDataset(str(root), split='train', pipeline=pipeline, serialize_data=False)
    with pytest.raises(FileNotFoundError) as e:
        train[0]
    assert 'instances/train2017/000000000009.png' in str(e.value)
    assert 'with_instance=False' in str(e.value)
    # without with_instance nothing is read
    assert 'edges' not in COCOStuffDataset(str(root), split='train', pipeline=PIPELINE,
                                           serialize_data=False)[0]['inputs']
