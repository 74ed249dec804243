"""SynthScenes layouts: bands and objects, per-domain distributions, scaling with resolution."""
import numpy as np
import pytest

from catgen.datasets.synthscenes import (LAYOUTS, SOURCE_CLASSES, TARGET_CLASSES, make_layout,
                                         scene_rng)


def _layout(domain, i, res=64, split='train'):
    return make_layout(scene_rng(domain, split, i), domain, res)


@pytest.mark.parametrize('domain,classes', [('source', SOURCE_CLASSES),
                                            ('target', TARGET_CLASSES)])
def test_layout_structure(domain, classes):
    cfg = LAYOUTS[domain]
    top_row = []
    for i in range(20):
        inst, inst_classes = _layout(domain, i)
        assert inst.shape == (64, 64) and inst.dtype == np.int16
        assert inst.min() >= 0 and inst.max() < len(inst_classes)
        assert classes[inst_classes[0]] in cfg['top']          # instance 0: the top band
        assert classes[inst_classes[1]] in cfg['ground']       # instance 1: the ground band
        n_bands = _n_bands(inst_classes, domain)
        n_objects = len(inst_classes) - n_bands
        lo, hi = cfg['num_objects']
        assert n_objects <= hi
        for c in inst_classes[n_bands:]:
            assert classes[c] in cfg['objects']
        # The top band is on top: the last row never belongs to it.
        assert not (inst[-1] == 0).any()
        top_row.append((inst[0] == 0).mean())
    assert np.median(top_row) > 0.7  # ... and the first row mostly does


def _horizon_tilt(inst):
    """|height difference| of the top band's lowest pixel between two columns."""
    h = [np.nonzero(inst[:, x] == 0)[0].max(initial=0) for x in (8, 55)]
    return abs(h[1] - h[0]) / 47


def _n_bands(inst_classes, domain):
    classes = SOURCE_CLASSES if domain == 'source' else TARGET_CLASSES
    return 3 if classes[inst_classes[2]] in LAYOUTS[domain]['ground'] else 2


def _mean_object_area(inst, inst_classes, domain):
    areas = np.bincount(inst.ravel(), minlength=len(inst_classes))[_n_bands(inst_classes,
                                                                             domain):]
    areas = areas[areas > 0]
    return areas.mean() if areas.size else None


def test_target_layout_distribution_differs():
    tilt = {d: np.median([_horizon_tilt(_layout(d, i)[0]) for i in range(40)])
            for d in ('source', 'target')}
    assert tilt['source'] < 0.06 and tilt['target'] > 2 * tilt['source'] + 0.05, tilt
    area = {}
    for d in ('source', 'target'):
        vals = [_mean_object_area(*_layout(d, i), d) for i in range(40)]
        area[d] = np.mean([v for v in vals if v is not None])
    assert area['target'] > 2 * area['source'], area


def test_layout_scales_with_resolution():
    for i in range(5):
        (i64, c64), (i128, c128) = _layout('target', i, 64), _layout('target', i, 128)
        np.testing.assert_array_equal(c64, c128)
        agree = (c64[i64] == c128[i128][::2, ::2]).mean()
        assert agree > 0.93, (i, agree)
