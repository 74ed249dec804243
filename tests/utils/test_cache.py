"""catgen.utils.cache: content hashes (memoised, invalidated by a rewrite), keys from parts,
and the on-disk cache (hit, miss on changed content or another key, atomic writes)."""
import numpy as np
import pytest

from catgen.utils import cache as cache_mod
from catgen.utils.cache import DiskCache, FileRef, cache_key, file_sha256, load_npz, save_npz


def test_file_sha256_is_the_content_hash_memoised_on_path_size_mtime(tmp_path, monkeypatch):
    a = tmp_path / 'a.bin'
    a.write_bytes(b'weights-1')
    import hashlib
    assert file_sha256(a) == hashlib.sha256(b'weights-1').hexdigest()
    reads = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        reads.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr('builtins.open', counting_open)
    file_sha256(a)
    assert reads == []                               # memoised: not read again
    a.write_bytes(b'weights-2!')                      # other size (and mtime): hashed again
    assert file_sha256(a) == hashlib.sha256(b'weights-2!').hexdigest() and reads
    monkeypatch.undo()
    d = tmp_path / 'folder'
    (d / 'sub').mkdir(parents=True)
    (d / 'sub' / 'x.txt').write_text('x')
    before = file_sha256(d)
    (d / 'y.txt').write_text('y')
    assert file_sha256(d) != before                   # a folder: its files, in order
    with pytest.raises(FileNotFoundError, match='segmenter checkpoint .*missing.pth'):
        file_sha256(tmp_path / 'missing.pth', what='segmenter checkpoint')


def test_key_depends_on_settings_and_file_content_not_path_or_order(tmp_path):
    a, b = tmp_path / 'a.bin', tmp_path / 'b.bin'
    a.write_bytes(b'weights-1')
    b.write_bytes(b'weights-1')
    k = cache_key(names=['x', 'y'], t=1.0, w=FileRef(a))
    assert k == cache_key(t=1.0, names=['x', 'y'], w=FileRef(b))   # same content, other path
    assert k == DiskCache(tmp_path).key(names=('x', 'y'), t=np.float64(1.0), w=FileRef(a))
    assert k != cache_key(names=['y', 'x'], t=1.0, w=FileRef(a))
    assert k != cache_key(names=['x', 'y'], t=2.0, w=FileRef(a))
    b.write_bytes(b'weights-2')
    assert k != cache_key(names=['x', 'y'], t=1.0, w=FileRef(b))    # changed content: a miss
    with pytest.raises(TypeError, match='json-able'):
        cache_key(x=object())


def test_hit_miss_and_changed_file_content(tmp_path):
    weights = tmp_path / 'w.pth'
    weights.write_bytes(b'v1')
    cache = DiskCache(tmp_path / 'c')
    calls = []

    def compute():
        calls.append(1)
        return {'emb': np.arange(6.0).reshape(2, 3)}

    parts = {'model': FileRef(weights), 'n': 1}
    first = cache.get_or_compute('text', parts, compute)
    again = DiskCache(tmp_path / 'c').get_or_compute('text', parts, compute)   # hit
    assert len(calls) == 1
    np.testing.assert_array_equal(first['emb'], again['emb'])
    files = sorted(p.name for p in (tmp_path / 'c').iterdir())
    assert len(files) == 1 and files[0].startswith('text-') and files[0].endswith('.npz')
    weights.write_bytes(b'v2')                                                # new content
    cache.get_or_compute('text', parts, compute)
    assert len(calls) == 2 and len(list((tmp_path / 'c').iterdir())) == 2


def test_corrupt_foreign_and_disabled(tmp_path):
    cache = DiskCache(tmp_path / 'c')
    key = cache.key(n=1)
    path = cache.save('k', key, {'a': np.ones(2)})
    assert path == cache.path('k', key) and path.name == f'k-{key[:32]}.npz'
    assert cache.load('k', key)['a'].tolist() == [1, 1]
    assert cache.load('k', 'f' * 64) is None              # another key: a miss
    collision = key[:32] + ('0' if key[32] != '0' else '1') + key[33:]
    assert cache.path('k', collision) == path             # same file name, other full key:
    assert cache.load('k', collision) is None             # a miss, not a wrong hit
    path.write_bytes(b'garbage')                          # truncated / foreign: a miss
    assert cache.load('k', key) is None
    off = DiskCache(tmp_path / 'd', enabled=False)
    assert off.save('k', key, {'a': np.ones(1)}) is None and off.load('k', key) is None
    assert off.get_or_compute('k', {'n': 1}, lambda: {'a': np.zeros(1)})['a'].tolist() == [0]
    assert not (tmp_path / 'd').exists()
    with pytest.raises(ValueError, match='reserved'):
        save_npz(tmp_path / 'x.npz', {'__cache_key__': np.ones(1)})


def test_json_entries(tmp_path):
    cache = DiskCache(tmp_path)
    key = cache.key(a=1)
    assert cache.load_json('meta', key) is None
    p = cache.save_json('meta', key, {'names': ['x'], 'n': 2})
    assert p.suffix == '.json' and cache.load_json('meta', key) == {'names': ['x'], 'n': 2}
    assert cache.load_json('meta', cache.key(a=2)) is None
    p.write_text('{not json')
    assert cache.load_json('meta', key) is None


def test_writes_are_atomic(tmp_path, monkeypatch):
    """A writer that dies mid-way leaves the old file (or none), never a partial one, and no
    temporary file."""
    cache = DiskCache(tmp_path)
    key = cache.key(a=1)
    cache.save('k', key, {'a': np.arange(3)})

    def dying_savez(path, **arrays):
        with open(path, 'wb') as f:
            f.write(b'PK\x03\x04 half a zip')
        raise KeyboardInterrupt('killed')

    monkeypatch.setattr(cache_mod.np, 'savez', dying_savez)
    with pytest.raises(KeyboardInterrupt):
        cache.save('k', key, {'a': np.arange(5)})
    monkeypatch.undo()
    assert cache.load('k', key)['a'].tolist() == [0, 1, 2]   # the old, complete file
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.path('k', key).name]
    assert load_npz(tmp_path / 'absent.npz') is None
