"""BaseAffinityEstimator: settings, its cache folder, the run options (combined: passed on)."""
import pytest

from catgen.affinity import BaseAffinityEstimator, CombinedAffinity, TextAffinity, default_cache_dir
from catgen.utils.cache import DiskCache


def test_default_cache_dir(tmp_path, monkeypatch):
    assert default_cache_dir(tmp_path) == tmp_path / '.cache' / 'affinity'
    monkeypatch.setenv('CATGEN_CACHE_DIR', str(tmp_path / 'env'))
    assert default_cache_dir() == tmp_path / 'env' / 'affinity'
    monkeypatch.delenv('CATGEN_CACHE_DIR')
    assert default_cache_dir().parts[-3:] == ('.cache', 'catgen', 'affinity')


def test_the_estimator_cache_is_the_shared_disk_cache(tmp_path):
    cache = BaseAffinityEstimator().cache(work_dir=tmp_path)
    assert isinstance(cache, DiskCache) and cache.enabled
    assert cache.root == tmp_path / '.cache' / 'affinity'
    own = BaseAffinityEstimator(cache_dir=tmp_path / 'own', use_cache=False).cache(tmp_path)
    assert own.root == tmp_path / 'own' and not own.enabled


def test_run_options_fill_in_without_overriding_the_config(tmp_path):
    est = TextAffinity(encoder=lambda names: None, cache_dir=tmp_path / 'cfg')
    est.set_run_options(progress=True, cache_dir=tmp_path / 'flag', use_cache=True)
    assert est.progress is True and est.cache_dir == tmp_path / 'cfg' and est.use_cache
    est.set_run_options(use_cache=False)
    assert est.use_cache is False
    combined = CombinedAffinity([TextAffinity(encoder=lambda n: None),
                                 dict(type='GroundTruthAffinity')])
    combined.set_run_options(progress=True, cache_dir=tmp_path / 'c', use_cache=False)
    text, truth = combined.estimators
    assert combined.progress and text.progress and text.cache_dir == tmp_path / 'c'
    assert not text.use_cache and not truth.use_cache


def test_base_settings_are_checked():
    with pytest.raises(ValueError, match='temperature'):
        BaseAffinityEstimator(temperature=0)
    with pytest.raises(ValueError, match='zero_row'):
        BaseAffinityEstimator(zero_row='ignore')
    with pytest.raises(ValueError, match='top_k'):
        BaseAffinityEstimator(top_k=0)
    with pytest.raises(NotImplementedError):
        BaseAffinityEstimator().estimate(['a'], ['b'])
