"""affinity_accuracy: top-1 on synonyms, L1 on mixtures, novel classes reported apart."""
import numpy as np
import pytest

from catgen.affinity import AffinityMatrix
from catgen.affinity.accuracy import affinity_accuracy, format_affinity_accuracy

S = ('grass', 'water', 'sand', 'flower')
T = ('lawn', 'ocean', 'meadow', 'shore', 'lava')
PRED = AffinityMatrix([[0.9, 0.1, 0.0, 0.0],     # lawn   -> grass (right)
                       [0.0, 0.4, 0.6, 0.0],     # ocean  -> sand (wrong)
                       [0.5, 0.0, 0.0, 0.5],     # meadow: L1 to (.7, 0, 0, .3) = 0.4
                       [0.0, 0.5, 0.5, 0.0],     # shore: exact, L1 0
                       [0.1, 0.2, 0.3, 0.4]], T, S)
TRUTH = {'lawn': {'grass': 1.0}, 'ocean': {'water': 1.0}, 'meadow': {'grass': 0.7, 'flower': 0.3},
         'shore': [0.0, 0.5, 0.5, 0.0]}
KINDS = {'lawn': 'synonym', 'ocean': 'synonym', 'meadow': 'mixture', 'shore': 'mixture',
         'lava': 'novel'}


def test_known_scores():
    r = affinity_accuracy(PRED, TRUTH, KINDS)
    assert r['top1_synonyms'] == 0.5 and r['num_synonyms'] == 2
    assert r['l1_mixtures'] == pytest.approx(0.2) and r['num_mixtures'] == 2
    assert r['novel'] == [{'class': 'lava', 'top': [('flower', 0.4), ('sand', 0.3),
                                                    ('water', 0.2)]}]
    assert r['per_class']['ocean']['correct'] is False
    assert r['per_class']['meadow']['l1'] == pytest.approx(0.4)
    lines = format_affinity_accuracy(r)
    assert lines[0].startswith('synonyms: top-1 accuracy 50.0%') and 'WRONG' in '\n'.join(lines)


def test_kinds_inferred_from_rows_and_absent_kinds():
    r = affinity_accuracy(PRED, TRUTH)  # lava has no row and no kind: not scored at all
    assert r['top1_synonyms'] == 0.5 and r['l1_mixtures'] == pytest.approx(0.2)
    assert r['novel'] == []
    r = affinity_accuracy(PRED, {'lawn': {'grass': 1.0}}, {'lava': 'novel'})
    assert r['l1_mixtures'] is None and r['top1_synonyms'] == 1.0 and len(r['novel']) == 1


def test_perfect_prediction_scores_perfectly():
    rows = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [.7, 0, 0, .3], [0, .5, .5, 0], [.25] * 4])
    r = affinity_accuracy(AffinityMatrix(rows, T, S), TRUTH, KINDS)
    assert r['top1_synonyms'] == 1.0 and r['l1_mixtures'] == pytest.approx(0.0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\['ice'\].*not target classes"):
        affinity_accuracy(PRED, {'ice': {'water': 1.0}})
    with pytest.raises(ValueError, match=r"\['rock'\], which are not source"):
        affinity_accuracy(PRED, {'lawn': {'rock': 1.0}})
    with pytest.raises(ValueError, match="'ocean' is a synonym but has no true row"):
        affinity_accuracy(PRED, {}, {'ocean': 'synonym'})
