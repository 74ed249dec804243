"""CombinedAffinity: weighted mean of rows, weights normalised, fallback rows skipped."""
import numpy as np
import pytest

from catgen.affinity import AffinityMatrix, BaseAffinityEstimator, CombinedAffinity
from catgen.registry import AFFINITY_ESTIMATORS

T, S = ('lawn', 'lava'), ('grass', 'water')


class Fixed(BaseAffinityEstimator):
    name = 'Fixed'

    def __init__(self, values, fallback=()):
        super().__init__(use_cache=False)
        self.values, self.fallback = values, list(fallback)

    def estimate(self, target_classes, source_classes, **ctx):
        self.ctx = ctx
        return AffinityMatrix(self.values, target_classes, source_classes,
                              self._meta(fallback_classes=self.fallback))


def test_weighted_mean_with_normalised_weights():
    a = Fixed([[1.0, 0.0], [0.0, 1.0]])
    b = Fixed([[0.0, 1.0], [0.5, 0.5]])
    m = CombinedAffinity([a, b], weights=[1, 3]).estimate(T, S, work_dir='w')
    np.testing.assert_allclose(m.values, [[0.25, 0.75], [0.375, 0.625]])
    assert m.meta['weights'] == [0.25, 0.75] and len(m.meta['components']) == 2
    assert a.ctx == {'work_dir': 'w'}  # context is passed through
    equal = CombinedAffinity([a, b]).estimate(T, S)
    np.testing.assert_allclose(equal.values, [[0.5, 0.5], [0.25, 0.75]])


def test_fallback_rows_do_not_vote():
    seen = Fixed([[1.0, 0.0], [0.0, 1.0]])
    blind = Fixed([[0.0, 1.0], [0.5, 0.5]], fallback=['lava'])
    m = CombinedAffinity([seen, blind], weights=[1, 1]).estimate(T, S)
    np.testing.assert_allclose(m.values, [[0.5, 0.5], [0.0, 1.0]])
    assert m.meta['fallback_classes'] == []
    m = CombinedAffinity([seen, blind], skip_fallback_rows=False).estimate(T, S)
    np.testing.assert_allclose(m.values[1], [0.25, 0.75])
    both = CombinedAffinity([Fixed([[1, 0], [.5, .5]], ['lava']),
                             Fixed([[0, 1], [.5, .5]], ['lava'])]).estimate(T, S)
    np.testing.assert_allclose(both.values[1], [0.5, 0.5])
    assert both.meta['fallback_classes'] == ['lava']


def test_built_from_configs(tmp_path):
    AffinityMatrix([[1.0, 0.0], [0.0, 1.0]], T, S).save(tmp_path / 'a')
    AffinityMatrix([[0.0, 1.0], [0.0, 1.0]], T, S).save(tmp_path / 'b')
    est = AFFINITY_ESTIMATORS.build(dict(type='CombinedAffinity', weights=[3, 1], estimators=[
        dict(type='FromFileAffinity', path=str(tmp_path / 'a')),
        dict(type='FromFileAffinity', path=str(tmp_path / 'b'))]))
    np.testing.assert_allclose(est.estimate(T, S).values, [[0.75, 0.25], [0.0, 1.0]])


def test_bad_weights():
    with pytest.raises(ValueError, match='one weight per estimator'):
        CombinedAffinity([Fixed([[1, 0]])], weights=[1, 2])
    with pytest.raises(ValueError, match='not all 0'):
        CombinedAffinity([Fixed([[1, 0]])], weights=[0])
