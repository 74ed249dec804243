"""GenValLoop / GenTestLoop: metrics' prepare() runs before the loop iterates; FID/KID take the
real features from the cache there, and from gt_img under MMEngine's plain loops, with the same
values either way. A tiny OASIS on tiny SynthScenes through MMEngine's Runner."""
import copy
import sys
from pathlib import Path

import pytest
from mmengine.runner import Runner

from catgen.engine.loops import GenTestLoop, GenValLoop, prepare_metrics
from catgen.registry import LOOPS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'evaluation' / 'feature_extractors'))
import tiny_extractor  # noqa: E402,F401  (registers TinyFeatureExtractor)


def evaluators(cache_dir):
    ext = dict(type='TinyFeatureExtractor', name='tiny')
    return [dict(type='FID', feature_extractor=ext, cache_dir=str(cache_dir), progress=False),
            dict(type='KID', feature_extractor=ext, cache_dir=str(cache_dir), progress=False,
                 num_subsets=5, subset_size=4),
            dict(type='ClassColorDistance', num_classes=21)]


def runner_for(cfg, work_dir, val_loop, test_loop, cache_dir):
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(work_dir)
    cfg.val_cfg = dict(type=val_loop)
    cfg.test_cfg = dict(type=test_loop)
    cfg.val_evaluator = evaluators(cache_dir)
    cfg.test_evaluator = evaluators(cache_dir)
    cfg.val_dataloader.batch_size = 3   # 8 images: batches 3, 3, 2
    return Runner.from_cfg(cfg)


def extractors(loop):
    return [m.extractor for m in loop.evaluator.metrics if hasattr(m, 'extractor')]


@pytest.mark.slow
def test_gen_loops_cache_real_features_and_agree_with_plain_loops(tiny_oasis_cfg, tmp_path):
    cache = tmp_path / 'real_stats'
    gen = runner_for(tiny_oasis_cfg, tmp_path / 'gen', 'GenValLoop', 'GenTestLoop', cache)
    assert isinstance(gen.val_loop, GenValLoop)
    metrics = gen.val()
    assert {'fid_tiny', 'kid_tiny', 'kid_std_tiny', 'color/mean_dist'} <= set(metrics)
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith('tiny-') and files[0].endswith('.npz')
    # prepare: FID computes and writes the 8 real images' features, KID (same extractor
    # settings, same key) loads them; then each featurises the 8 generated images
    fid_ext, kid_ext = extractors(gen.val_loop)
    assert (fid_ext.images, kid_ext.images) == (8 + 8, 8)
    assert all(m.prepared for m in gen.val_loop.evaluator.metrics if hasattr(m, 'prepared'))

    again = gen.val()                  # second validation: only the generated images
    assert (fid_ext.images, kid_ext.images) == (16 + 8, 8 + 8)
    assert again['fid_tiny'] == pytest.approx(metrics['fid_tiny'], rel=1e-9)

    plain = runner_for(tiny_oasis_cfg, tmp_path / 'plain', 'ValLoop', 'TestLoop',
                       tmp_path / 'unused')
    ref = plain.val()
    assert not (tmp_path / 'unused').exists()          # no cache without the gen loop
    p_fid, p_kid = extractors(plain.val_loop)
    assert p_fid.images == p_kid.images == 16          # fakes + gt_img in process()
    for key in ('fid_tiny', 'kid_tiny', 'kid_std_tiny'):
        assert metrics[key] == pytest.approx(ref[key], rel=1e-5, abs=1e-9), key
    assert metrics['fid_tiny'] > 0

    # GenTestLoop: same data set, pipeline and extractor -> the same cache file
    test_metrics = gen.test()
    assert isinstance(gen.test_loop, GenTestLoop)
    assert sorted(p.name for p in cache.iterdir()) == files
    assert test_metrics['fid_tiny'] == pytest.approx(metrics['fid_tiny'], rel=1e-9)
    assert sum(e.images for e in extractors(gen.test_loop)) == 16   # only generated images


class _Recorder:
    def __init__(self):
        self.calls = []
        self.results = []

    def prepare(self, model, dataloader):
        self.calls.append((model, dataloader))


class _NoPrepare:
    pass


def test_prepare_metrics_calls_only_metrics_that_have_prepare():
    class Evaluator:
        metrics = [_Recorder(), _NoPrepare(), _Recorder()]

    model, loader = object(), object()
    done = prepare_metrics(Evaluator, model, loader)
    assert done == [Evaluator.metrics[0], Evaluator.metrics[2]]
    assert Evaluator.metrics[0].calls == [(model, loader)] == Evaluator.metrics[2].calls


def test_loops_are_registered():
    assert LOOPS.get('GenValLoop') is GenValLoop and LOOPS.get('GenTestLoop') is GenTestLoop
