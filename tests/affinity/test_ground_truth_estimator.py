"""GroundTruthAffinity and read_affinity_truth on a tiny classes.json written here."""
import json

import numpy as np
import pytest

from catgen.affinity import GroundTruthAffinity, read_affinity_truth
from catgen.registry import AFFINITY_ESTIMATORS

SOURCE = ['grass', 'water', 'sand', 'flower']
TARGET = ['lawn', 'shore', 'lava', 'meadow']
AFFINITY = {'lawn': {'grass': 1.0}, 'shore': {'sand': 0.5, 'water': 0.5},
            'meadow': {'grass': 0.7, 'flower': 0.3}}


def write_classes_json(root, kinds=True, affinity=AFFINITY):
    target = {'classes': TARGET, 'affinity': affinity}
    if kinds:
        target['kinds'] = {'lawn': 'synonym', 'shore': 'mixture', 'lava': 'novel',
                           'meadow': 'mixture'}
    root.mkdir(parents=True, exist_ok=True)
    (root / 'classes.json').write_text(json.dumps({'source': {'classes': SOURCE},
                                                   'target': target}))
    return root


def test_true_rows_one_hot_mixture_and_uniform_novel(tmp_path):
    root = write_classes_json(tmp_path / 'synth')
    est = AFFINITY_ESTIMATORS.build(dict(type='GroundTruthAffinity', classes_json=str(root)))
    with pytest.warns(UserWarning, match=r"\['lava'\]"):
        m = est.estimate()
    assert m.target_classes == tuple(TARGET) and m.source_classes == tuple(SOURCE)
    np.testing.assert_array_equal(m.values, [[1, 0, 0, 0], [0, .5, .5, 0], [.25] * 4,
                                             [.7, 0, 0, .3]])
    assert m.meta['estimator'] == 'GroundTruthAffinity'
    assert m.meta['fallback_classes'] == ['lava']
    assert m.meta['kinds']['lava'] == 'novel'


def test_classes_pick_and_order_rows_and_file_path_works(tmp_path):
    root = write_classes_json(tmp_path)
    m = GroundTruthAffinity().estimate(['meadow', 'lawn'], ['flower', 'sand', 'water', 'grass'],
                                       synthscenes=root / 'classes.json')
    np.testing.assert_array_equal(m.values, [[.3, 0, 0, .7], [0, 0, 0, 1]])
    with pytest.raises(ValueError, match=r"\['ocean'\] are not in"):
        GroundTruthAffinity(root).estimate(['ocean'])
    with pytest.raises(ValueError, match=r"missing \['flower'\]"):
        GroundTruthAffinity(root).estimate(['lawn'], ['grass', 'water', 'sand'])


def test_zero_row_error_names_the_novel_class(tmp_path):
    root = write_classes_json(tmp_path)
    with pytest.raises(ValueError, match=r"\['lava'\]"):
        GroundTruthAffinity(root, zero_row='error').estimate()


def test_kinds_are_inferred_when_absent_and_rows_are_checked(tmp_path):
    truth = read_affinity_truth(write_classes_json(tmp_path / 'a', kinds=False))
    assert truth['kinds'] == {'lawn': 'synonym', 'shore': 'mixture', 'lava': 'novel',
                              'meadow': 'mixture'}
    assert 'lava' not in truth['rows']
    bad = dict(AFFINITY, lawn={'grass': 0.9})
    with pytest.raises(ValueError, match="'lawn' sums to 0.9"):
        read_affinity_truth(write_classes_json(tmp_path / 'b', affinity=bad))
    bad = dict(AFFINITY, lawn={'rock': 1.0})
    with pytest.raises(ValueError, match=r"\['rock'\], which are not source"):
        read_affinity_truth(write_classes_json(tmp_path / 'c', affinity=bad))
    with pytest.raises(FileNotFoundError, match='prepare_synthscenes'):
        read_affinity_truth(tmp_path / 'nothing')


def test_builtin_synthscenes_truth_matches_its_recipes():
    recipes = pytest.importorskip('catgen.datasets.synthscenes.recipes')
    with pytest.warns(UserWarning):
        m = GroundTruthAffinity(recipes.classes_json({})).estimate()
    assert m.target_classes == tuple(recipes.TARGET_CLASSES)
    true = recipes.true_affinity_matrix()
    known = true.sum(axis=1) > 0
    np.testing.assert_allclose(m.values[known], true[known])
    novel = [t for t, k in recipes.TARGET_KINDS.items() if k == 'novel']
    assert sorted(m.meta['fallback_classes']) == sorted(novel)
