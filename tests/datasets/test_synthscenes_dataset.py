"""SynthScenesDataset on a tiny tree in the layout of tools/prepare_synthscenes.py."""
import json

import numpy as np
import pytest
from PIL import Image

from catgen.datasets import SynthScenesDataset, select_few_shot

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
            dict(type='PackSISInputs')]
SOURCE = ['sky', 'grass', 'water', 'sand']
TARGET = ['lawn', 'shore', 'lava']


def make_synthscenes(root, n_source=3, n_target=8, size=8, seed=0):
    rng = np.random.default_rng(seed)
    meta = {
        'name': 'SynthScenes', 'settings': {'size': size, 'seed': seed},
        'source': {'classes': SOURCE, 'palette': [[i, i, i] for i in range(len(SOURCE))],
                   'recipes': [{} for _ in SOURCE]},
        'target': {'classes': TARGET, 'palette': [[9, i, 9] for i in range(len(TARGET))],
                   'recipes': [{} for _ in TARGET],
                   'kinds': {'lawn': 'synonym', 'shore': 'mixture', 'lava': 'novel'},
                   'affinity': {'lawn': {'grass': 1.0}, 'shore': {'sand': 0.5, 'water': 0.5}}},
    }
    root.mkdir(parents=True)
    (root / 'classes.json').write_text(json.dumps(meta))
    labels = {}
    for domain, n, classes in (('source', n_source, SOURCE), ('target', n_target, TARGET)):
        for split in ('train', 'val'):
            (root / domain / 'images' / split).mkdir(parents=True)
            (root / domain / 'annotations' / split).mkdir(parents=True)
            for i in range(n if split == 'train' else 2):
                img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                lab = rng.integers(0, len(classes), (size, size)).astype(np.uint8)
                lab[-1, -1] = 255
                Image.fromarray(img).save(root / domain / 'images' / split / f'{i:06d}.png')
                Image.fromarray(lab).save(root / domain / 'annotations' / split / f'{i:06d}.png')
                labels[domain, split, f'{i:06d}'] = lab
    (root / 'target' / 'few_shot').mkdir()
    stems = [f'{i:06d}' for i in range(n_target)]
    for k in (1, 2, 4):
        (root / 'target' / 'few_shot' / f'shots_{k}.txt').write_text(
            '\n'.join(select_few_shot(stems, k, 0)) + '\n')
    return labels


def ids_of(ds):
    return [ds.get_data_info(i)['img_id'] for i in range(len(ds))]


@pytest.fixture
def root(tmp_path):
    make_synthscenes(tmp_path / 'synthscenes')
    return tmp_path / 'synthscenes'


def test_domains_metainfo_and_labels(root):
    labels = make_synthscenes(root.parent / 'again')
    src = SynthScenesDataset(str(root.parent / 'again'), domain='source', split='train',
                             pipeline=PIPELINE, serialize_data=False)
    assert len(src) == 3
    m = src.metainfo
    assert m['classes'] == ('unlabeled', *SOURCE) and m['num_classes'] == 5
    assert m['palette'][0] == [0, 0, 0] and m['palette'][1:] == [[i, i, i] for i in range(4)]
    assert m['domain'] == 'source' and 'affinity' not in m
    out = src[2]
    raw = labels['source', 'train', '000002'].astype(np.int64)
    np.testing.assert_array_equal(out['inputs']['label'].numpy(),
                                  np.where(raw == 255, 0, raw + 1))
    tgt = SynthScenesDataset(str(root), domain='target', split='val', serialize_data=False)
    assert len(tgt) == 2 and tgt.metainfo['num_classes'] == 4
    assert tgt.metainfo['affinity']['shore'] == {'sand': 0.5, 'water': 0.5}
    assert tgt.metainfo['kinds']['lava'] == 'novel'


def test_fixed_shots_file_is_used(root):
    # the file normally equals select_few_shot(ids, k, 0); rewrite it to see that it is read
    (root / 'target' / 'few_shot' / 'shots_2.txt').write_text('000005\n000003\n')
    ds = SynthScenesDataset(str(root), domain='target', num_shots=2, serialize_data=False)
    assert ids_of(ds) == ['000005', '000003'] and ds.subset_ids == ['000005', '000003']
    # another seed draws its own subset; a count without a file falls back on the draw
    stems = [f'{i:06d}' for i in range(8)]
    ds = SynthScenesDataset(str(root), domain='target', num_shots=2, subset_seed=1,
                            serialize_data=False)
    assert ids_of(ds) == select_few_shot(stems, 2, 1)
    ds = SynthScenesDataset(str(root), domain='target', num_shots=3, serialize_data=False)
    assert ids_of(ds) == select_few_shot(stems, 3, 0)


def test_fixed_files_nested(root):
    subsets = [ids_of(SynthScenesDataset(str(root), domain='target', num_shots=k,
                                         serialize_data=False)) for k in (1, 2, 4)]
    assert subsets[1][:1] == subsets[0] and subsets[2][:2] == subsets[1]


def test_missing_root_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        SynthScenesDataset(str(tmp_path / 'syn'), domain='target', split='val')
    msg = str(e.value)
    assert f'python tools/prepare_synthscenes.py --out {tmp_path / "syn"}' in msg
    assert 'target/images/val' in msg and 'classes.json' in msg


def test_bad_domain_and_missing_section(root):
    with pytest.raises(ValueError, match="'source' or 'target'"):
        SynthScenesDataset(str(root), domain='tgt')
    data = json.loads((root / 'classes.json').read_text())
    del data['target']
    (root / 'classes.json').write_text(json.dumps(data))
    with pytest.raises(ValueError, match='no "target" section'):
        SynthScenesDataset(str(root), domain='target')


def test_no_meta_file_warning(root, capsys):
    """MMEngine takes string metainfo values for meta-file paths; 'domain' must not trip it."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('synthscenes_meta_test', log_level='WARNING')
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    try:
        ds = SynthScenesDataset(str(root), domain='target', split='train', serialize_data=False)
    finally:
        logger.removeHandler(handler)
    assert ds.metainfo['domain'] == 'target'
    assert not [r for r in records if 'meta file' in r]
    assert 'meta file' not in capsys.readouterr().out
