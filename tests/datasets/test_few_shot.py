"""Few-shot subsets of BaseSISDataset: num_shots + subset_seed, subset_file, write_subset."""
import numpy as np
import pytest
from PIL import Image

from catgen.datasets import BaseSISDataset, select_few_shot

META = dict(classes=('unlabeled', 'a', 'b'), label_shift=1)


def make_pairs(root, n=12):
    (root / 'img').mkdir(parents=True)
    (root / 'lab').mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(root / 'img' / f'{i:03d}.png')
        Image.fromarray(np.full((4, 4), i % 2, np.uint8)).save(root / 'lab' / f'{i:03d}.png')
    return [f'{i:03d}' for i in range(n)]


def build(root, **kw):
    kw.setdefault('serialize_data', False)  # skips MMEngine's gc.collect(): faster tests
    return BaseSISDataset(data_root=str(root), data_prefix=dict(img_path='img', seg_map_path='lab'),
                          img_suffix='.png', metainfo=META, **kw)


def ids_of(ds):
    return [ds.get_data_info(i)['img_id'] for i in range(len(ds))]


def test_nested_and_seeded(tmp_path):
    stems = make_pairs(tmp_path)
    all_ds = build(tmp_path)
    assert len(all_ds) == 12 and all_ds.subset_ids is None and ids_of(all_ds) == stems
    s2, s5, s10 = (ids_of(build(tmp_path, num_shots=k, subset_seed=3)) for k in (2, 5, 10))
    assert len(s2) == 2 and len(s5) == 5 and len(s10) == 10
    assert s5[:2] == s2 and s10[:5] == s5  # nested, in selection order
    assert s5 == select_few_shot(stems, 5, 3)
    serialized = build(tmp_path, num_shots=5, subset_seed=3, serialize_data=True)
    assert serialized.subset_ids == s5 and ids_of(serialized) == s5
    others = [ids_of(build(tmp_path, num_shots=5, subset_seed=s)) for s in (0, 1, 2)]
    assert any(o != s5 for o in others)
    assert len(build(tmp_path, num_shots=-1)) == 12


def test_num_shots_errors(tmp_path):
    make_pairs(tmp_path, n=3)
    with pytest.raises(ValueError, match=r'num_shots=4 must be in \[1, 3\]'):
        build(tmp_path, num_shots=4)
    with pytest.raises(ValueError, match='positive int'):
        build(tmp_path, num_shots=0)


def test_subset_file(tmp_path):
    make_pairs(tmp_path)
    f = tmp_path / 'subset.txt'
    f.write_text('# chosen by hand\n007\n002\n\n010\n')
    ds = build(tmp_path, subset_file=str(f))
    assert ids_of(ds) == ['007', '002', '010'] and ds.subset_ids == ['007', '002', '010']
    assert ids_of(build(tmp_path, subset_file=f, num_shots=2)) == ['007', '002']
    with pytest.raises(ValueError, match='lists only 3 ids'):
        build(tmp_path, subset_file=f, num_shots=5)


def test_subset_file_unknown_ids(tmp_path):
    make_pairs(tmp_path)
    f = tmp_path / 'subset.txt'
    f.write_text('001\nfoo\n099\n')
    with pytest.raises(ValueError) as e:
        build(tmp_path, subset_file=f)
    msg = str(e.value)
    assert str(f) in msg and 'foo, 099' in msg and '2 id(s)' in msg
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        build(tmp_path, subset_file=tmp_path / 'missing.txt')


def test_write_subset_round_trip(tmp_path):
    make_pairs(tmp_path / 'data')
    ds = build(tmp_path / 'data', num_shots=4, subset_seed=7)
    path = ds.write_subset(tmp_path / 'work')
    assert path == tmp_path / 'work' / 'subset_ids.txt'
    assert path.read_text().split() == ds.subset_ids
    again = build(tmp_path / 'data', subset_file=path)
    assert ids_of(again) == ds.subset_ids
    assert build(tmp_path / 'data').write_subset(tmp_path / 'work2') is None
    assert not (tmp_path / 'work2').exists()


def test_lazy_init_defers_scan(tmp_path):
    make_pairs(tmp_path)
    ds = build(tmp_path, num_shots=3, lazy_init=True)
    assert ds._subset_ids is None  # nothing scanned yet
    assert len(ds.subset_ids) == 3 and len(ds) == 3


def test_missing_metainfo_classes(tmp_path):
    make_pairs(tmp_path)
    with pytest.raises(ValueError, match='metainfo\\["classes"\\]'):
        BaseSISDataset(data_root=str(tmp_path),
                       data_prefix=dict(img_path='img', seg_map_path='lab'))


def test_base_missing_root_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        build(tmp_path / 'nowhere')
    msg = str(e.value)
    assert 'data root' in msg and 'nowhere' in msg and 'img/' in msg and 'lab/' in msg
