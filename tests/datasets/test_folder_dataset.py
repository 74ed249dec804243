"""FolderSISDataset: the generic layout, metainfo, label shift and its error messages."""
import json

import numpy as np
import pytest
from PIL import Image

from catgen.datasets import FolderSISDataset
from catgen.registry import DATASETS

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
            dict(type='PackSISInputs')]


def make_folder(root, n=4, split='train', size=(6, 8), classes=('sky', 'grass', 'water'),
                palette=True, seed=0):
    rng = np.random.default_rng(seed)
    meta = {'classes': list(classes)}
    if palette:
        meta['palette'] = [[10 * i, 20, 30] for i in range(len(classes))]
    root.mkdir(parents=True, exist_ok=True)
    (root / 'classes.json').write_text(json.dumps(meta))
    (root / 'images' / split).mkdir(parents=True, exist_ok=True)
    (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
    labels = {}
    for i in range(n):
        stem = f'img{i:02d}'
        img = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
        lab = rng.integers(0, len(classes), size=size).astype(np.uint8)
        lab[0, 0] = 255
        ext = '.png' if i % 2 else '.jpg'
        Image.fromarray(img).save(root / 'images' / split / f'{stem}{ext}')
        Image.fromarray(lab).save(root / 'annotations' / split / f'{stem}.png')
        labels[stem] = lab
    return labels


def test_metainfo_and_label_shift(tmp_path):
    labels = make_folder(tmp_path / 'd')
    ds = FolderSISDataset(str(tmp_path / 'd'), split='train', pipeline=PIPELINE)
    meta = ds.metainfo
    assert meta['classes'] == ('unlabeled', 'sky', 'grass', 'water')
    assert meta['num_classes'] == 4 and meta['dontcare_index'] == 0 and meta['label_shift'] == 1
    assert meta['palette'][0] == [0, 0, 0] and meta['palette'][2] == [10, 20, 30]
    assert len(ds) == 4
    out = ds[1]
    stem = 'img01'
    assert out['data_samples'].img_path.endswith(f'{stem}.png')
    label = out['inputs']['label'].numpy()
    raw = labels[stem].astype(np.int64)
    expected = np.where(raw == 255, 0, raw + 1)
    np.testing.assert_array_equal(label, expected)
    assert label[0, 0] == 0 and out['inputs']['img'].shape == (3, 6, 8)
    assert out['data_samples'].sample_idx == 1 and out['data_samples'].flip is False


def test_build_from_config_and_generated_palette(tmp_path):
    make_folder(tmp_path / 'd', palette=False)
    ds = DATASETS.build(dict(type='FolderSISDataset', data_root=str(tmp_path / 'd'),
                             pipeline=PIPELINE))
    assert isinstance(ds, FolderSISDataset)
    pal = ds.metainfo['palette']
    assert len(pal) == 4 and pal[0] == [0, 0, 0]
    assert all(len(c) == 3 for c in pal)


def test_missing_root_shows_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        FolderSISDataset(str(tmp_path / 'nope'), split='val')
    msg = str(e.value)
    assert 'nope' in msg and 'classes.json' in msg
    assert 'images/val' in msg and 'annotations/val' in msg


def test_missing_classes_json(tmp_path):
    make_folder(tmp_path / 'd')
    (tmp_path / 'd' / 'classes.json').unlink()
    with pytest.raises(FileNotFoundError, match='classes.json'):
        FolderSISDataset(str(tmp_path / 'd'))


def test_bad_palette_length(tmp_path):
    make_folder(tmp_path / 'd')
    (tmp_path / 'd' / 'classes.json').write_text(json.dumps(
        {'classes': ['a', 'b'], 'palette': [[1, 2, 3]]}))
    with pytest.raises(ValueError, match='2 classes, 1 colours'):
        FolderSISDataset(str(tmp_path / 'd'))


def test_missing_split_folder(tmp_path):
    make_folder(tmp_path / 'd', split='train')
    with pytest.raises(FileNotFoundError, match='image folder .*images/val'):
        FolderSISDataset(str(tmp_path / 'd'), split='val')


def test_image_without_label_names_file(tmp_path):
    make_folder(tmp_path / 'd')
    (tmp_path / 'd' / 'annotations' / 'train' / 'img02.png').unlink()
    with pytest.raises(FileNotFoundError) as e:
        FolderSISDataset(str(tmp_path / 'd'))
    msg = str(e.value)
    assert 'img02.jpg' in msg and 'has no label map' in msg
    assert str(tmp_path / 'd' / 'annotations' / 'train' / 'img02.png') in msg


def test_empty_split_names_folder_and_suffixes(tmp_path):
    make_folder(tmp_path / 'd', n=0)
    (tmp_path / 'd' / 'images' / 'train' / 'notes.txt').write_text('x')
    with pytest.raises(ValueError) as e:
        FolderSISDataset(str(tmp_path / 'd'))
    msg = str(e.value)
    assert 'empty' in msg and str(tmp_path / 'd' / 'images' / 'train') in msg
    assert '.jpg' in msg and '.png' in msg


def test_label_id_outside_classes(tmp_path):
    make_folder(tmp_path / 'd', n=1)
    bad = np.zeros((6, 8), np.uint8)
    bad[2, 3] = 7
    path = tmp_path / 'd' / 'annotations' / 'train' / 'img00.png'
    Image.fromarray(bad).save(path)
    ds = FolderSISDataset(str(tmp_path / 'd'), pipeline=PIPELINE)
    with pytest.raises(ValueError) as e:
        ds[0]
    msg = str(e.value)
    assert str(path) in msg and ': 7 ' in msg and '0..2' in msg and '255' in msg


def test_duplicate_id_and_hidden_files(tmp_path):
    make_folder(tmp_path / 'd', n=2)
    img_dir = tmp_path / 'd' / 'images' / 'train'
    (img_dir / '._img00.jpg').write_bytes(b'macOS junk')  # hidden: skipped
    assert len(FolderSISDataset(str(tmp_path / 'd'))) == 2
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(img_dir / 'img00.png')
    with pytest.raises(ValueError, match="share the id 'img00'"):
        FolderSISDataset(str(tmp_path / 'd'))
