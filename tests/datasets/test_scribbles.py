"""SimulateScribbles: strokes inside their regions, seeded per image, flip-consistent."""
import numpy as np
import pytest

from catgen.datasets.transforms import SimulateScribbles
from catgen.datasets.transforms.scribbles import simulate_scribbles


def label_map():
    lab = np.zeros((48, 48), np.int64)
    lab[:, 24:] = 1
    lab[30:, :] = 2
    lab[40:44, 4:8] = 3     # a small region (16 px)
    lab[0, 0] = 255
    return lab


def test_strokes_lie_inside_their_class_and_cover_every_class():
    lab = label_map()
    out = SimulateScribbles(width=3, length=15)(dict(gt_seg_map=lab, seg_map_path='a/x.png'))
    s = out['gt_scribbles']
    assert s.dtype == np.int64 and s.shape == lab.shape
    drawn = s != 255
    assert np.array_equal(s[drawn], lab[drawn])           # never outside the class
    assert set(np.unique(s[drawn])) == {0, 1, 2, 3}       # every class gets a stroke
    assert 0.01 < drawn.mean() < 0.5                     # sparse
    assert np.array_equal(out['gt_seg_map'], lab)        # the dense map is kept


def test_deterministic_per_file_and_seed():
    lab = label_map()
    t = SimulateScribbles(seed=0)
    a = t(dict(gt_seg_map=lab, seg_map_path='p/x.png'))['gt_scribbles']
    b = t(dict(gt_seg_map=lab, seg_map_path='other/dir/x.png'))['gt_scribbles']
    c = t(dict(gt_seg_map=lab, seg_map_path='p/y.png'))['gt_scribbles']
    d = SimulateScribbles(seed=1)(dict(gt_seg_map=lab, seg_map_path='p/x.png'))['gt_scribbles']
    assert np.array_equal(a, b)      # the file name, not its folder, seeds it
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_flipped_map_gets_the_flipped_strokes():
    lab = label_map()
    t = SimulateScribbles(seed=3)
    a = t(dict(gt_seg_map=lab, seg_map_path='x.png'))['gt_scribbles']
    b = t(dict(gt_seg_map=np.ascontiguousarray(lab[:, ::-1]), seg_map_path='x.png',
               flip=True))['gt_scribbles']
    assert np.array_equal(a[:, ::-1], b)


def test_stroke_counts_and_skipped_classes():
    lab = label_map()
    rng = np.random.default_rng(0)
    s = simulate_scribbles(lab, rng, skip_classes=(0,), length=0, width=1,
                           area_per_stroke=10 ** 6)
    # length 0 and width 1: one pixel per stroke, one stroke per class
    assert (s == 0).sum() == 0
    assert [(s == c).sum() for c in (1, 2, 3)] == [1, 1, 1]
    s = simulate_scribbles(lab, np.random.default_rng(0), length=0, width=1, max_strokes=3,
                           area_per_stroke=100)
    assert (s == 1).sum() == 3 and (s == 3).sum() == 1


def test_bad_options_and_missing_label():
    with pytest.raises(ValueError, match='width'):
        SimulateScribbles(width=0)
    with pytest.raises(KeyError, match='LoadSISAnnotations'):
        SimulateScribbles()(dict(img=np.zeros((4, 4, 3), np.uint8)))
