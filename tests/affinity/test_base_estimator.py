"""BaseAffinityEstimator settings and the on-disk AffinityCache."""
import numpy as np
import pytest

from catgen.affinity import AffinityCache, BaseAffinityEstimator, FileRef, default_cache_dir


def test_cache_key_depends_on_settings_and_file_content_not_path(tmp_path):
    cache = AffinityCache(tmp_path / 'c')
    a, b = tmp_path / 'a.bin', tmp_path / 'b.bin'
    a.write_bytes(b'weights-1')
    b.write_bytes(b'weights-1')
    k = cache.key(names=['x', 'y'], t=1.0, w=FileRef(a))
    assert k == cache.key(t=1.0, names=['x', 'y'], w=FileRef(b))  # same content, other path
    assert k != cache.key(names=['y', 'x'], t=1.0, w=FileRef(a))
    assert k != cache.key(names=['x', 'y'], t=2.0, w=FileRef(a))
    b.write_bytes(b'weights-2')
    assert k != cache.key(names=['x', 'y'], t=1.0, w=FileRef(b))
    with pytest.raises(TypeError, match='json-able'):
        cache.key(x=object())


def test_get_or_compute_computes_once_and_writes_atomically(tmp_path):
    cache = AffinityCache(tmp_path / 'c')
    calls = []

    def compute():
        calls.append(1)
        return {'emb': np.arange(6.0).reshape(2, 3)}

    first = cache.get_or_compute('text', {'n': 1}, compute)
    again = AffinityCache(tmp_path / 'c').get_or_compute('text', {'n': 1}, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first['emb'], again['emb'])
    files = [p.name for p in (tmp_path / 'c').iterdir()]
    assert len(files) == 1 and files[0].startswith('text-') and files[0].endswith('.npz')
    # a corrupt file is recomputed, a disabled cache never writes
    (tmp_path / 'c' / files[0]).write_bytes(b'garbage')
    cache.get_or_compute('text', {'n': 1}, compute)
    assert len(calls) == 2
    AffinityCache(tmp_path / 'd', enabled=False).get_or_compute('text', {'n': 1}, compute)
    assert len(calls) == 3 and not (tmp_path / 'd').exists()


def test_default_cache_dir(tmp_path, monkeypatch):
    assert default_cache_dir(tmp_path) == tmp_path / '.cache' / 'affinity'
    monkeypatch.setenv('CATGEN_CACHE_DIR', str(tmp_path / 'env'))
    assert default_cache_dir() == tmp_path / 'env' / 'affinity'
    monkeypatch.delenv('CATGEN_CACHE_DIR')
    assert default_cache_dir().parts[-3:] == ('.cache', 'catgen', 'affinity')


def test_base_settings_are_checked():
    with pytest.raises(ValueError, match='temperature'):
        BaseAffinityEstimator(temperature=0)
    with pytest.raises(ValueError, match='zero_row'):
        BaseAffinityEstimator(zero_row='ignore')
    with pytest.raises(ValueError, match='top_k'):
        BaseAffinityEstimator(top_k=0)
    with pytest.raises(NotImplementedError):
        BaseAffinityEstimator().estimate(['a'], ['b'])
