"""FromFileAffinity: a saved matrix comes back checked against the expected classes."""
import numpy as np
import pytest

from catgen.affinity import AffinityMatrix
from catgen.registry import AFFINITY_ESTIMATORS

T, S = ('lawn', 'ocean'), ('grass', 'water', 'sand')
V = np.array([[0.8, 0.1, 0.1], [0.0, 1.0, 0.0]])


def test_loads_validates_and_reorders(tmp_path):
    AffinityMatrix(V, T, S, meta={'estimator': 'TextAffinity'}).save(tmp_path / 'a')
    est = AFFINITY_ESTIMATORS.build(dict(type='FromFileAffinity', path=str(tmp_path / 'a.json')))
    m = est.estimate(T, ('unlabeled', *S))  # metainfo-style names with don't care first
    np.testing.assert_array_equal(m.values, V)
    assert m.meta['estimator'] == 'TextAffinity' and m.meta['loaded_from'].endswith('a.json')
    r = est.estimate(('ocean',), ('sand', 'water', 'grass'))
    np.testing.assert_array_equal(r.values, [[0.0, 1.0, 0.0]])


def test_mismatching_names_fail_clearly(tmp_path):
    AffinityMatrix(V, T, S).save(tmp_path / 'a')
    est = AFFINITY_ESTIMATORS.build(dict(type='FromFileAffinity', path=str(tmp_path / 'a')))
    with pytest.raises(ValueError, match=r"missing \['rock'\].*unexpected \['sand'\]"):
        est.estimate(T, ('grass', 'water', 'rock'))
    with pytest.raises(ValueError, match='another order'):
        AFFINITY_ESTIMATORS.build(dict(type='FromFileAffinity', path=str(tmp_path / 'a'),
                                       reorder=False)).estimate(('ocean', 'lawn'), S)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        AFFINITY_ESTIMATORS.build(dict(type='FromFileAffinity',
                                       path=str(tmp_path / 'missing'))).estimate(T, S)
