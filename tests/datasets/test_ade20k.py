"""ADE20KDataset: ADEChallengeData2016 layout, ids used as is, 151 channels."""
import numpy as np
import pytest
from PIL import Image

from catgen.datasets import ADE20KDataset

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
            dict(type='PackSISInputs')]


def make_ade(root, n=2):
    rng = np.random.default_rng(0)
    labels = {}
    for split, prefix in (('training', 'ADE_train'), ('validation', 'ADE_val')):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(1, n + 1):
            stem = f'{prefix}_{i:08d}'
            Image.fromarray(rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)).save(
                root / 'images' / split / f'{stem}.jpg')
            lab = rng.integers(0, 151, (6, 10)).astype(np.uint8)
            lab[0, :3] = (0, 150, 1)
            Image.fromarray(lab).save(root / 'annotations' / split / f'{stem}.png')
            labels[stem] = lab
    return labels


def test_layout_ids_as_is(tmp_path):
    root = tmp_path / 'ADEChallengeData2016'
    labels = make_ade(root)
    ds = ADE20KDataset(str(root), split='training', pipeline=PIPELINE, serialize_data=False)
    m = ds.metainfo
    assert m['num_classes'] == 151 and len(m['classes']) == 151 and len(m['palette']) == 151
    assert m['classes'][:3] == ('other', 'wall', 'building') and m['classes'][150] == 'flag'
    assert m['label_shift'] == 0 and m['dontcare_index'] == 0
    assert len(ds) == 2
    out = ds[0]
    np.testing.assert_array_equal(out['inputs']['label'].numpy(),
                                  labels['ADE_train_00000001'].astype(np.int64))
    assert out['inputs']['img'].shape == (3, 6, 10)
    val = ADE20KDataset(str(root), split='val', serialize_data=False)
    assert val.get_data_info(0)['img_id'] == 'ADE_val_00000001'


def test_missing_root_tree(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        ADE20KDataset(str(tmp_path / 'ADEChallengeData2016'))
    msg = str(e.value)
    for part in ('images/training', 'images/validation', 'annotations/training',
                 'annotations/validation', 'ADEChallengeData2016.zip'):
        assert part in msg


def test_bad_split(tmp_path):
    with pytest.raises(ValueError, match="split must be one of .*'training'"):
        ADE20KDataset(str(tmp_path), split='test')


def test_id_above_150(tmp_path):
    root = tmp_path / 'ADEChallengeData2016'
    make_ade(root, n=1)
    path = root / 'annotations' / 'training' / 'ADE_train_00000001.png'
    lab = np.zeros((6, 10), np.uint8)
    lab[1, 1], lab[2, 2] = 151, 200
    Image.fromarray(lab).save(path)
    ds = ADE20KDataset(str(root), pipeline=PIPELINE, serialize_data=False)
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert str(path) in msg and '151, 200' in msg and '0..150' in msg
