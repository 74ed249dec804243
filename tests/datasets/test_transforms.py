"""Loading, geometric and packing transforms: values, shapes and error messages."""
import numpy as np
import pytest
import torch
from PIL import Image

from catgen.datasets.transforms import (CenterCrop, LoadSISAnnotations, LoadSISImageFromFile,
                                        PackSISInputs, RandomCrop, RandomFlip, Resize)
from catgen.datasets.transforms.loading import map_to_channel_space
from catgen.registry import TRANSFORMS
from catgen.structures import SISDataSample


def write_pair(tmp_path, h=6, w=8, label=None, name='a'):
    img = (np.arange(h * w * 3).reshape(h, w, 3) % 256).astype(np.uint8)
    if label is None:
        label = (np.arange(h * w).reshape(h, w) % 3).astype(np.uint8)
    ip, lp = tmp_path / f'{name}.png', tmp_path / f'{name}_label.png'
    Image.fromarray(img).save(ip)
    Image.fromarray(label).save(lp)
    return dict(img_path=str(ip), seg_map_path=str(lp), num_classes=4, label_shift=1,
                sample_idx=0), img, label


def load(results):
    return LoadSISAnnotations()(LoadSISImageFromFile()(results))


def test_load_pair(tmp_path):
    results, img, label = write_pair(tmp_path)
    out = load(results)
    np.testing.assert_array_equal(out['img'], img)
    assert out['gt_seg_map'].dtype == np.int64
    np.testing.assert_array_equal(out['gt_seg_map'], label.astype(np.int64) + 1)
    assert out['ori_shape'] == (6, 8) and out['img_shape'] == (6, 8) and out['flip'] is False


def test_label_mapping_modes():
    raw = np.array([[0, 2, 255]], np.uint8)
    np.testing.assert_array_equal(map_to_channel_space(raw, 4, 1), [[1, 3, 0]])
    np.testing.assert_array_equal(map_to_channel_space(np.array([[0, 3]]), 4, 0), [[0, 3]])
    with pytest.raises(ValueError, match=r'x.png has ids outside the class list: 3 .*0\.\.2'):
        map_to_channel_space(np.array([[3]]), 4, 1, 'x.png')
    with pytest.raises(ValueError, match=r'y.png .*: 4, 255 .*0\.\.3'):
        map_to_channel_space(np.array([[4, 255]]), 4, 0, 'y.png')
    with pytest.raises(ValueError, match='label_shift must be 0'):
        map_to_channel_space(raw, 4, 2)


def test_transform_args_override_results(tmp_path):
    results, _, label = write_pair(tmp_path)
    out = LoadSISAnnotations(num_classes=3, label_shift=0)(dict(results))
    np.testing.assert_array_equal(out['gt_seg_map'], label)
    assert out['img_shape'] == (6, 8)  # set from the label map when there is no image
    del results['num_classes']
    with pytest.raises(ValueError, match='does not know num_classes'):
        LoadSISAnnotations()(results)


def test_corrupt_and_truncated_image(tmp_path):
    results, _, _ = write_pair(tmp_path)
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not an image at all')
    with pytest.raises(OSError) as e:
        LoadSISImageFromFile()(dict(results, img_path=str(bad)))
    assert str(bad) in str(e.value) and 'remove it and its label map' in str(e.value)
    big = tmp_path / 'big.jpg'
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        big)
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(big.read_bytes()[:400])
    with pytest.raises(OSError, match=r'cut\.jpg .*truncated, corrupt'):
        LoadSISImageFromFile()(dict(results, img_path=str(cut)))
    with pytest.raises(FileNotFoundError, match='gone.png does not exist'):
        LoadSISImageFromFile()(dict(results, img_path=str(tmp_path / 'gone.png')))


def test_size_mismatch_names_both(tmp_path):
    results, _, _ = write_pair(tmp_path)
    other, _, _ = write_pair(tmp_path, h=5, w=8, name='b')
    with pytest.raises(ValueError) as e:
        load(dict(results, seg_map_path=other['seg_map_path']))
    msg = str(e.value)
    assert results['img_path'] in msg and other['seg_map_path'] in msg
    assert '6x8' in msg and '5x8' in msg


def test_colour_label_map_rejected(tmp_path):
    results, _, _ = write_pair(tmp_path)
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(results['seg_map_path'])
    with pytest.raises(ValueError, match='is a colour image'):
        load(results)
    grey = np.repeat(np.full((6, 8, 1), 2, np.uint8), 3, axis=2)  # grey saved as RGB: fine
    Image.fromarray(grey).save(results['seg_map_path'])
    assert (load(dict(results))['gt_seg_map'] == 3).all()


def test_palette_mode_label(tmp_path):
    results, _, _ = write_pair(tmp_path)
    p = Image.fromarray(np.array([[0, 1], [2, 255]], np.uint8), mode='P')
    p.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [9] * (3 * 253))
    p.save(results['seg_map_path'])
    out = LoadSISAnnotations()(dict(results))
    np.testing.assert_array_equal(out['gt_seg_map'], [[1, 2], [3, 0]])


def test_resize(tmp_path):
    results, _, label = write_pair(tmp_path, h=6, w=8)
    out = Resize(scale=(4, 3), interpolation='bilinear')(load(results))
    assert out['img'].shape == (3, 4, 3) and out['img'].dtype == np.uint8
    assert out['gt_seg_map'].shape == (3, 4) and out['img_shape'] == (3, 4)
    np.testing.assert_array_equal(out['gt_seg_map'], label[1::2, 1::2].astype(np.int64) + 1)
    out = Resize(short_side=3)(load(dict(results)))
    assert out['img'].shape[:2] == (3, 4) and out['gt_seg_map'].shape == (3, 4)
    up = Resize(scale=16)(load(dict(results)))
    assert up['gt_seg_map'].shape == (16, 16)
    assert set(np.unique(up['gt_seg_map'])) <= {1, 2, 3}  # nearest: no new ids
    with pytest.raises(ValueError, match='exactly one of'):
        Resize()
    with pytest.raises(ValueError, match='interpolation must be one of'):
        Resize(scale=4, interpolation='cubic')


def test_crops_keep_alignment(tmp_path):
    results, img, label = write_pair(tmp_path, h=6, w=8)
    out = CenterCrop((2, 4))(load(results))
    np.testing.assert_array_equal(out['img'], img[2:4, 2:6])
    np.testing.assert_array_equal(out['gt_seg_map'], label[2:4, 2:6].astype(np.int64) + 1)
    assert out['img_shape'] == (2, 4)
    np.random.seed(0)
    for _ in range(5):
        out = RandomCrop(3)(load(dict(results)))
        assert out['img'].shape == (3, 3, 3) and out['gt_seg_map'].shape == (3, 3)
        # find the window from the image and check the label came from the same place
        flat = img.reshape(-1, 3)
        pos = np.flatnonzero((flat == out['img'][0, 0]).all(1))[0]
        top, left = divmod(pos, 8)
        np.testing.assert_array_equal(out['gt_seg_map'],
                                      label[top:top + 3, left:left + 3].astype(np.int64) + 1)
    with pytest.raises(ValueError) as e:
        RandomCrop((7, 4))(load(dict(results)))
    assert 'larger than the 6x8' in str(e.value) and 'Resize' in str(e.value)


def test_random_flip(tmp_path):
    results, img, label = write_pair(tmp_path)
    out = RandomFlip(prob=1.0)(load(dict(results)))
    assert out['flip'] is True
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    np.testing.assert_array_equal(out['gt_seg_map'], label[:, ::-1].astype(np.int64) + 1)
    out = RandomFlip(prob=0.0)(load(dict(results)))
    assert out['flip'] is False
    np.testing.assert_array_equal(out['img'], img)
    twice = RandomFlip(prob=1.0)(RandomFlip(prob=1.0)(load(dict(results))))
    assert twice['flip'] is False
    np.testing.assert_array_equal(twice['img'], img)
    with pytest.raises(ValueError, match=r'prob must be in \[0, 1\]'):
        RandomFlip(prob=2)


def test_pack(tmp_path):
    results, img, label = write_pair(tmp_path)
    packed = PackSISInputs()(load(results))
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs['img'].dtype == torch.uint8 and inputs['img'].shape == (3, 6, 8)
    assert torch.equal(inputs['img'], torch.from_numpy(img).permute(2, 0, 1))
    assert inputs['label'].dtype == torch.int64 and inputs['label'].shape == (6, 8)
    assert isinstance(sample, SISDataSample) and 'edges' not in inputs
    assert sample.img_path == results['img_path'] and sample.seg_map_path == results['seg_map_path']
    assert sample.ori_shape == (6, 8) and sample.img_shape == (6, 8)
    assert sample.flip is False and sample.sample_idx == 0
    with pytest.raises(KeyError, match='neither "img" nor "gt_seg_map"'):
        PackSISInputs()({'img_path': 'x'})


def test_registered_names():
    for name in ('LoadSISImageFromFile', 'LoadSISAnnotations', 'Resize', 'RandomCrop',
                 'CenterCrop', 'RandomFlip', 'PackSISInputs'):
        assert TRANSFORMS.get(name).__name__ == name
    t = TRANSFORMS.build(dict(type='Resize', scale=(8, 4)))
    assert t.scale == (8, 4)


def test_instance_edges_by_hand():
    """A pixel is an edge when a 4-neighbour has another instance id (SPADE's get_edges)."""
    from catgen.datasets.transforms.loading import instance_edges
    inst = np.array([[1, 1, 2, 2],
                     [1, 1, 2, 2],
                     [3, 3, 3, 3],
                     [3, 3, 3, 3]])
    expected = np.array([[0, 1, 1, 0],
                         [1, 1, 1, 1],
                         [1, 1, 1, 1],
                         [0, 0, 0, 0]], np.uint8)
    np.testing.assert_array_equal(instance_edges(inst), expected)
    assert instance_edges(inst).dtype == np.uint8
    # a diagonal neighbour does not count; one instance has no edges
    np.testing.assert_array_equal(instance_edges(np.array([[5, 6], [6, 5]])), np.ones((2, 2)))
    assert not instance_edges(np.full((3, 3), 7)).any()


def write_instance(tmp_path, results, inst):
    path = tmp_path / 'inst.png'
    Image.fromarray(inst.astype(np.uint16)).save(path)
    return dict(results, instance_path=str(path))


def test_with_instance_reads_the_instance_map_only_when_asked(tmp_path):
    from catgen.datasets.transforms.loading import instance_edges
    results, _, _ = write_pair(tmp_path)
    inst = np.zeros((6, 8), np.int64)
    inst[:, 4:] = 26001  # a thing id of the Cityscapes kind (id * 1000 + k), 16 bit
    results = write_instance(tmp_path, results, inst)
    plain = LoadSISAnnotations()(LoadSISImageFromFile()(dict(results)))
    assert 'instance_edges' not in plain and 'gt_instance_map' not in plain
    out = LoadSISAnnotations(with_instance=True)(LoadSISImageFromFile()(dict(results)))
    np.testing.assert_array_equal(out['gt_instance_map'], inst)
    assert out['instance_edges'][:, 3:5].all() and out['instance_edges'].sum() == 12
    packed = PackSISInputs()(out)
    assert torch.equal(packed['inputs']['edges'], torch.from_numpy(instance_edges(inst)))
    # the data set can ask too (CityscapesDataset(with_instance_edges=True))
    assert 'instance_edges' in LoadSISAnnotations()(dict(results, with_instance=True))
    assert 'with_instance=True' in repr(LoadSISAnnotations(with_instance=True))


def test_with_instance_errors(tmp_path):
    results, _, _ = write_pair(tmp_path)
    with pytest.raises(ValueError, match='gives no instance map') as e:
        LoadSISAnnotations(with_instance=True)(dict(results))
    assert 'ADE20K' in str(e.value)
    missing = dict(results, instance_path=str(tmp_path / 'absent.png'))
    with pytest.raises(FileNotFoundError, match='absent.png') as e:
        LoadSISAnnotations(with_instance=True)(missing)
    assert 'with_instance=False' in str(e.value)
    small = write_instance(tmp_path, results, np.zeros((3, 8)))
    with pytest.raises(ValueError, match='Instance map .* is 3x8'):
        LoadSISAnnotations(with_instance=True)(small)


def test_edges_are_recomputed_after_a_crop(tmp_path):
    """As the official code (edges of the transformed instance map): a crop border is no edge."""
    results, _, _ = write_pair(tmp_path)
    inst = np.zeros((6, 8), np.int64)
    inst[:, 4:] = 2
    results = write_instance(tmp_path, results, inst)
    loaded = LoadSISAnnotations(with_instance=True)(LoadSISImageFromFile()(results))
    out = CenterCrop((2, 4))(loaded)  # columns 2..5: the boundary 3|4 stays inside
    np.testing.assert_array_equal(out['instance_edges'], [[0, 1, 1, 0], [0, 1, 1, 0]])
    loaded = LoadSISAnnotations(with_instance=True)(LoadSISImageFromFile()(results))
    loaded = _crop_at(loaded, 0, 4, 2, 4)  # columns 4..7: one instance, no edge at the border
    assert not loaded['instance_edges'].any()


def _crop_at(results, top, left, h, w):
    from catgen.datasets.transforms.processing import _crop
    return _crop(results, top, left, h, w)
