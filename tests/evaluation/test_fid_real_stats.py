"""The real-feature cache of FID/KID (catgen/evaluation/real_stats.py): real images through the
data set's own pipeline, key = image files + pipeline + extractor, atomic files, rank protocol."""
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from catgen.evaluation import real_stats
from catgen.evaluation.real_stats import (cache_path, describe_pipeline,
                                          extract_dataset_features, load_features,
                                          load_or_compute_real_features, real_features_key)

sys.path.insert(0, str(Path(__file__).resolve().parent / 'feature_extractors'))
from tiny_extractor import TinyFeatureExtractor  # noqa: E402

PIPELINE = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
            dict(type='PackSISInputs')]


def dataset(root, pipeline=PIPELINE):
    from catgen.datasets import SynthScenesDataset
    return SynthScenesDataset(data_root=str(root), domain='target', split='val',
                              pipeline=list(pipeline))


@pytest.fixture
def data_root(tiny_synthscenes, tmp_path):
    """A private copy of the tiny SynthScenes set (tests here modify files)."""
    root = tmp_path / 'synthscenes'
    shutil.copytree(tiny_synthscenes, root)
    return root


def test_real_features_come_from_the_pipeline_images(data_root):
    ds = dataset(data_root)
    ext = TinyFeatureExtractor()
    feats = extract_dataset_features(ext, ds, batch_size=3, progress=False)
    assert feats.shape == (8, 16) and feats.dtype == np.float32
    files = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
    imgs = torch.stack([torch.from_numpy(np.array(Image.open(f).convert('RGB'))).permute(2, 0, 1)
                        for f in files])
    np.testing.assert_allclose(feats, ext(imgs).numpy(), rtol=1e-6, atol=1e-7)
    assert ext.calls == 3 + 1  # batches of 3, 3, 2, then the reference batch


def test_cache_is_written_once_and_reused(data_root, tmp_path):
    ds, ext = dataset(data_root), TinyFeatureExtractor()
    cache = tmp_path / 'cache'
    first = load_or_compute_real_features(ext, ds, cache_dir=cache, progress=False)
    key = real_features_key(ext, ds)
    path = cache_path(cache, ext, key)
    assert path.name == f'tiny-{key[:32]}.npz' and path.is_file()
    assert sorted(os.listdir(cache)) == [path.name]   # no temporary file left behind
    assert ext.images == 8
    again = load_or_compute_real_features(ext, ds, cache_dir=cache, progress=False)
    assert ext.images == 8                              # loaded, not recomputed
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(load_features(path, key), first)
    assert load_features(path, 'another key') is None


def test_key_follows_files_pipeline_and_extractor(data_root):
    ext = TinyFeatureExtractor()
    base = real_features_key(ext, dataset(data_root))
    img = Path(dataset(data_root).get_data_info(3)['img_path'])
    os.utime(img, (1, 1))                               # same content, other mtime: same key
    assert real_features_key(ext, dataset(data_root)) == base
    arr = np.array(Image.open(img))
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(img)                      # one pixel of one image changed
    changed_file = real_features_key(ext, dataset(data_root))
    assert changed_file != base
    flipped = PIPELINE[:2] + [dict(type='RandomFlip', prob=1.0)] + PIPELINE[2:]
    changed_pipeline = real_features_key(ext, dataset(data_root, flipped))
    assert changed_pipeline not in (base, changed_file)
    other_prob = PIPELINE[:2] + [dict(type='RandomFlip', prob=0.5)] + PIPELINE[2:]
    assert real_features_key(ext, dataset(data_root, other_prob)) != changed_pipeline
    changed_extractor = real_features_key(TinyFeatureExtractor(seed=1), dataset(data_root))
    assert changed_extractor not in (base, changed_file, changed_pipeline)


def test_changed_image_recomputes(data_root, tmp_path):
    ext, cache = TinyFeatureExtractor(), tmp_path / 'cache'
    before = load_or_compute_real_features(ext, dataset(data_root), cache_dir=cache,
                                           progress=False)
    img = Path(dataset(data_root).get_data_info(0)['img_path'])
    Image.fromarray(255 - np.array(Image.open(img))).save(img)
    after = load_or_compute_real_features(ext, dataset(data_root), cache_dir=cache,
                                          progress=False)
    assert ext.images == 16 and len(os.listdir(cache)) == 2
    assert not np.allclose(before[0], after[0]) and np.allclose(before[1:], after[1:])


def test_describe_pipeline_is_stable_and_json_able():
    import json
    a, b = describe_pipeline(dataset_pipeline()), describe_pipeline(dataset_pipeline())
    assert a == b and ' at 0x' not in json.dumps(a)
    assert [t['class'].split('.')[-1] for t in a] == ['LoadSISImageFromFile', 'RandomFlip',
                                                      'PackSISInputs']
    assert a[1]['attrs'] == {'prob': 0.25}


def dataset_pipeline():
    from mmengine.dataset import Compose

    from catgen.registry import TRANSFORMS
    return Compose([TRANSFORMS.build(t) for t in (dict(type='LoadSISImageFromFile'),
                                                  dict(type='RandomFlip', prob=0.25),
                                                  dict(type='PackSISInputs'))])


def test_corrupt_cache_file_is_recomputed(data_root, tmp_path):
    ds, ext, cache = dataset(data_root), TinyFeatureExtractor(), tmp_path / 'cache'
    path = cache_path(cache, ext, real_features_key(ext, ds))
    path.parent.mkdir(parents=True)
    path.write_bytes(b'not an npz')
    feats = load_or_compute_real_features(ext, ds, cache_dir=cache, progress=False)
    assert ext.images == 8 and feats.shape == (8, 16)
    assert load_features(path) is not None


def test_no_cache_computes_every_time_and_writes_nothing(data_root, tmp_path):
    ds, ext, cache = dataset(data_root), TinyFeatureExtractor(), tmp_path / 'cache'
    for _ in range(2):
        load_or_compute_real_features(ext, ds, cache_dir=cache, use_cache=False, progress=False)
    assert ext.images == 16 and not cache.exists()


def test_rank_protocol_rank0_computes_others_wait_and_read(data_root, tmp_path, monkeypatch):
    import mmengine.dist as dist
    ds, cache = dataset(data_root), tmp_path / 'cache'
    events = []
    monkeypatch.setattr(dist, 'barrier', lambda *a, **k: events.append('barrier'))
    rank0 = TinyFeatureExtractor()
    monkeypatch.setattr(dist, 'get_rank', lambda *a, **k: 0)
    feats0 = load_or_compute_real_features(rank0, ds, cache_dir=cache, progress=False)
    assert rank0.images == 8 and events == ['barrier']
    # rank 1: never computes; after the barrier it reads what rank 0 wrote
    rank1 = TinyFeatureExtractor()
    monkeypatch.setattr(dist, 'get_rank', lambda *a, **k: 1)
    feats1 = load_or_compute_real_features(rank1, ds, cache_dir=cache, progress=False)
    assert rank1.images == 0 and events == ['barrier', 'barrier']
    np.testing.assert_array_equal(feats0, feats1)
    # rank 1 without a readable file (no shared file system): no computation, None
    rank1b = TinyFeatureExtractor()
    assert load_or_compute_real_features(rank1b, ds, cache_dir=tmp_path / 'elsewhere',
                                         progress=False) is None
    assert rank1b.images == 0


def test_data_set_without_img_path_is_a_clear_error():
    class NoPaths(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def get_data_info(self, i):
            return {'seg_map_path': 'x.png'}

    with pytest.raises(ValueError, match='use_cache=False'):
        real_stats.real_features_key(TinyFeatureExtractor(), NoPaths())


DIST_WORKER = '''
import json, os, sys
import torch
import torch.distributed as dist
sys.path.insert(0, {helper!r})
from catgen.utils.setup_env import register_all_modules
register_all_modules()
import tiny_extractor  # noqa: F401
from mmengine.dataset import DefaultSampler, pseudo_collate
from torch.utils.data import DataLoader
from catgen.datasets import SynthScenesDataset
from catgen.evaluation.metrics import FID

dist.init_process_group('gloo')
rank = dist.get_rank()
ds = SynthScenesDataset(data_root={root!r}, domain='target', split='val', pipeline={pipeline!r})
loader = DataLoader(ds, batch_size=3, sampler=DefaultSampler(ds, shuffle=False),
                    collate_fn=pseudo_collate)
metric = FID(feature_extractor=dict(type='TinyFeatureExtractor'), cache_dir={cache!r},
             progress=False)
metric.prepare(None, loader)
real_images = metric.extractor.images
for batch in loader:   # "generated" = the inverted real image, per sample
    metric.process(batch, [dict(fake_img=255 - img) for img in batch['inputs']['img']])
out = metric.evaluate(len(ds))
# one file per rank: both ranks share stdout, where their lines could interleave
with open(os.path.join({out_dir!r}, f'rank{{rank}}.json'), 'w') as f:
    json.dump(dict(rank=rank, out=out, real_images=real_images,
                   has_real=metric.real_features is not None), f)
dist.destroy_process_group()
'''


@pytest.mark.slow
def test_two_processes_rank0_computes_rank1_reads_and_fid_equals_one_process(data_root,
                                                                             tmp_path):
    """A real 2-process gloo run (torchrun): rank 0 computes and writes the real features, rank
    1 computes none and reads them after the barrier; the FID gathered over both ranks' halves
    of the generated images equals the single-process value."""
    import json
    import socket
    import subprocess

    from catgen.evaluation.metrics import FID
    cache = tmp_path / 'cache'
    helper = str(Path(__file__).resolve().parent / 'feature_extractors')
    script = tmp_path / 'worker.py'
    script.write_text(DIST_WORKER.format(helper=helper, root=str(data_root),
                                         pipeline=PIPELINE, cache=str(cache),
                                         out_dir=str(tmp_path)))
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    repo = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([repo, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                           f'--master_port={port}', str(script)], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    by_rank = {r: json.loads((tmp_path / f'rank{r}.json').read_text()) for r in (0, 1)}
    assert by_rank[0]['real_images'] == 8 and by_rank[1]['real_images'] == 0
    assert by_rank[1]['has_real']                     # read from rank 0's file
    assert len(list(cache.iterdir())) == 1
    assert by_rank[0]['out'] == by_rank[1]['out']     # broadcast by MMEngine

    ds = dataset(data_root)
    single = FID(feature_extractor=TinyFeatureExtractor(), use_cache=False, progress=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=lambda b: b)
    single.prepare(None, loader)
    for batch in loader:
        single.process(None, [dict(fake_img=255 - s['inputs']['img']) for s in batch])
    ref = single.evaluate(len(ds))
    assert by_rank[0]['out']['fid_tiny'] == pytest.approx(ref['fid_tiny'], rel=1e-6)
