"""ImageFolderDataset: images without label maps, with nested few-shot subsets."""
import numpy as np
import pytest
from PIL import Image

from catgen.datasets import ImageFolderDataset, select_few_shot

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='PackSISInputs')]


@pytest.fixture
def folder(tmp_path):
    for i in range(12):
        sub = tmp_path / 'imgs' / ('a' if i < 6 else 'b')
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(sub / f'{i:02d}.png')
    (tmp_path / 'imgs' / '.hidden.png').write_bytes(b'')
    (tmp_path / 'imgs' / 'notes.txt').write_text('x')
    return tmp_path


def test_scans_images_and_packs_them_without_labels(folder):
    ds = ImageFolderDataset(data_root=str(folder), img_path='imgs', pipeline=PIPELINE)
    assert len(ds) == 12 and ds.subset_ids is None
    assert ds.get_data_info(0)['img_id'] == 'a/00'
    item = ds[7]
    assert set(item['inputs']) == {'img'} and item['inputs']['img'].shape == (3, 8, 8)
    assert int(item['inputs']['img'][0, 0, 0]) == 7
    assert ds.metainfo['num_classes'] == 0


def test_few_shot_subsets_are_nested_and_written(folder, tmp_path):
    ten = ImageFolderDataset(data_root=str(folder), img_path='imgs', num_shots=10)
    five = ImageFolderDataset(data_root=str(folder), img_path='imgs', num_shots=5)
    assert five.subset_ids == ten.subset_ids[:5]
    assert ten.subset_ids == select_few_shot([f'{"a" if i < 6 else "b"}/{i:02d}'
                                              for i in range(12)], 10, 0)
    other = ImageFolderDataset(data_root=str(folder), img_path='imgs', num_shots=10,
                               subset_seed=1)
    assert other.subset_ids != ten.subset_ids
    path = ten.write_subset(tmp_path / 'work')
    assert path.read_text().split() == ten.subset_ids
    again = ImageFolderDataset(data_root=str(folder), img_path='imgs', subset_file=str(path))
    assert again.subset_ids == ten.subset_ids


def test_missing_or_empty_folders_are_named(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        ImageFolderDataset(data_root=str(folder), img_path='nowhere')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no image ending in'):
        ImageFolderDataset(data_root=str(tmp_path), img_path='empty')
    with pytest.raises(ValueError, match='num_shots=20'):
        ImageFolderDataset(data_root=str(folder), img_path='imgs', num_shots=20)
