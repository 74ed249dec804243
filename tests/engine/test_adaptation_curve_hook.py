"""AdaptationCurveHook: DCL's quality and diversity curves, written during adaptation."""
import json
import os.path as osp
import sys

import pytest
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tiny_mmseg import tiny_mmseg  # noqa: E402

SIZE = 64


def images(root, where, **kw):
    return dict(type='ImageFolderDataset', data_root=str(root), img_path=where, **kw)


def runner(root, work, hook, max_iters=4):
    from catgen.engine.hooks import AdaptationCurveHook
    pipeline = [dict(type='LoadSISImageFromFile'), dict(type='PackSISInputs')]
    tiny = dict(size=SIZE, max_channels=8, channel_base=64)
    return Runner(
        model=dict(type='StyleGAN2Synthesizer',
                   generator=dict(type='StyleGAN2Generator', style_dim=8, n_mlp=2, **tiny),
                   discriminator=dict(type='StyleGAN2Discriminator', **tiny)),
        work_dir=str(work),
        train_dataloader=dict(dataset=images(root, 'target/images/train', num_shots=4,
                                             pipeline=pipeline),
                              batch_size=2, collate_fn=dict(type='pseudo_collate'),
                              sampler=dict(type='InfiniteSampler', shuffle=True)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        optim_wrapper=dict(constructor='GANOptimWrapperConstructor',
                           generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
                           discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))),
        custom_hooks=[AdaptationCurveHook(**hook)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        default_scope='catgen', experiment_name=f'curve-{work.name}-{max_iters}')


@pytest.fixture
def hook_cfg(tiny_synthscenes, tmp_path):
    cfg, ckpt = tiny_mmseg(tmp_path, 3, bn_spread=0.5)
    return dict(interval=2, source_images=images(tiny_synthscenes, 'source/images/val'),
                target_images=images(tiny_synthscenes, 'target/images/val'), num_samples=6,
                distance=dict(type='segmenter', config=str(cfg), checkpoint=str(ckpt)),
                classifier=dict(iters=20, batch_size=8, width=4), min_accuracy=0.0,
                batch_size=4, cache_dir=str(tmp_path / 'cache'))


def test_curves_are_written_at_the_start_every_interval_and_kept_on_resume(
        tiny_synthscenes, hook_cfg, tmp_path):
    work = tmp_path / 'work'
    runner(tiny_synthscenes, work, hook_cfg).train()
    data = json.loads((work / 'adaptation_curves.json').read_text())
    assert [r['iter'] for r in data['records']] == [0, 2, 4]
    key = data['diversity_key']
    assert key == 'intra_lpips_seg-tiny_mmseg'
    for r in data['records']:
        assert 0 <= r['realism'] <= 1 and r[key] >= 0
    assert 0 <= data['classifier']['accuracy'] <= 1 and data['num_samples'] == 6
    assert len(list((tmp_path / 'cache').glob('realism-*.pth'))) == 1  # trained once, cached
    # resume from iteration 2 to 6: the records up to 2 are kept, 4 and 6 recomputed
    first = data['records'][1]
    r = runner(tiny_synthscenes, work, hook_cfg, max_iters=6)
    r._resume = True
    r._load_from = str(work / 'iter_2.pth')
    r.train()
    data = json.loads((work / 'adaptation_curves.json').read_text())
    assert [x['iter'] for x in data['records']] == [0, 2, 4, 6]
    assert data['records'][1] == first


def test_a_classifier_that_cannot_tell_the_domains_apart_is_refused(
        tiny_synthscenes, hook_cfg, tmp_path):
    hook_cfg['min_accuracy'] = 1.01
    with pytest.raises(ValueError, match='accuracy'):
        runner(tiny_synthscenes, tmp_path / 'w', hook_cfg).train()
