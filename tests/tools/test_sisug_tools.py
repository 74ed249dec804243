"""SIS-UG end to end through the tools on tiny SynthScenes data and a tiny random prior: stage 1
(proxy masks, rearranger, pictures, resume), stage 2 from the stage-1 checkpoint (inversion of
the shots, mapper), test (metrics in the source segmenter of the model zoo, diversity over
random sources) and synthesize from a folder of label maps; the configs."""
import glob
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tools.test_fewshot_smis_tools import tiny_prior_file

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import synthesize as synthesize_tool  # noqa: E402
import test as test_tool  # noqa: E402
import train as train_tool  # noqa: E402

from catgen.utils.checkpoint import safe_load  # noqa: E402

STAGE1 = osp.join(ROOT, 'configs/sis-ug/sis-ug_rearranger_synthscenes-source.py')
STAGE2 = osp.join(ROOT, 'configs/sis-ug/sis-ug_mapper_synthscenes-source_5shot.py')


def options(data_root, max_iters=2, stage1=None):
    prior = tiny_prior_file(data_root)
    opts = [f'model.prior_checkpoint={prior}', 'model.prior.max_channels=8',
            'model.prior.channel_base=128', 'model.prior.style_dim=8', 'model.prior.n_mlp=2',
            'model.num_clusters=4', 'model.kmeans.num_samples=8',
            'model.rearranger.embed_channels=8', 'model.rearranger.heads=1',
            'model.rearranger.head_channels=8', 'model.mapper.width=4',
            'model.mapper.num_blocks=1', 'model.latent_avg_samples=32',
            'train_dataloader.batch_size=2', f'train_dataloader.dataset.data_root={data_root}',
            f'train_cfg.max_iters={max_iters}', 'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1']
    if stage1 is None:
        return opts + ['custom_hooks.0.interval=2', 'custom_hooks.0.num_samples=3']
    return opts + [f'model.rearranger_checkpoint={stage1}', 'model.inversion.steps=3',
                   'train_cfg.val_interval=1000', 'custom_hooks.1.interval=2',
                   'custom_hooks.1.num_samples=3',
                   f'val_dataloader.dataset.data_root={data_root}',
                   f'test_dataloader.dataset.data_root={data_root}']


@pytest.fixture(scope='module')
def trained(tiny_synthscenes, tmp_path_factory):
    base = tmp_path_factory.mktemp('sisug')
    train_tool.main([STAGE1, '--work-dir', str(base / 'stage1'), '--cfg-options',
                     *options(tiny_synthscenes)])
    stage1 = base / 'stage1' / 'iter_2.pth'
    train_tool.main([STAGE2, '--work-dir', str(base / 'stage2'), '--cfg-options',
                     *options(tiny_synthscenes, stage1=stage1)])
    return base


def test_stage1_fits_proxy_masks_draws_pictures_and_resumes(trained, tiny_synthscenes):
    work = trained / 'stage1'
    centres = safe_load(work / 'proxy_centres.pth')['centres']
    state = safe_load(work / 'iter_2.pth')['state_dict']
    assert torch.equal(state['centres'], centres) and centres.shape == (4, 8)
    assert any(k.startswith('rearranger.') for k in state)
    img = np.asarray(Image.open(work / 'proxy_masks.png'))
    assert img.shape[0] == 2 * (128 + 2) + 2  # sample | proxy mask, 64 px tiles at scale 2
    img = np.asarray(Image.open(work / 'rearranged' / 'iter_000002.png'))
    assert img.shape[0] == 6 * (128 + 2) + 2
    runner = train_tool.build_runner([STAGE1, '--work-dir', str(work), '--resume',
                                      '--cfg-options', *options(tiny_synthscenes, max_iters=3),
                                      'default_hooks.checkpoint.max_keep_ckpts=2'])
    runner.train()
    assert runner.iter == 3
    log = open(sorted(work.glob('*/*.log'))[-1]).read()
    assert 'loaded with the model' in log  # the resumed run keeps the checkpoint's centres


def test_stage2_starts_from_stage1_and_trains_the_mapper(trained):
    s1 = safe_load(trained / 'stage1' / 'iter_2.pth')['state_dict']
    s2 = safe_load(trained / 'stage2' / 'iter_2.pth')['state_dict']
    assert torch.equal(s1['centres'], s2['centres'])
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if k.startswith('rearranger.'))
    assert any(k.startswith('mapper.') for k in s2)
    assert len((trained / 'stage2' / 'train_ids.txt').read_text().split()) == 5
    assert safe_load(trained / 'stage2' / 'prior_inversion.pth')['latents'].shape[0] == 5
    assert (trained / 'stage2' / 'inversion.png').is_file()


def test_test_tool_scores_the_synthesis(trained, tiny_synthscenes, tmp_path):
    config = tmp_path / 'eval.py'
    config.write_text(f"_base_ = ['{STAGE2}']\n"
                      "test_evaluator = [_base_.test_evaluator[0], _base_.test_evaluator[2]]\n")
    metrics = test_tool.main([str(config), str(trained / 'stage2' / 'iter_2.pth'),
                              '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                              *options(tiny_synthscenes, stage1='/nonexistent.pth'),
                              'model.num_eval_samples=2'])
    assert 0 <= metrics['seg/mIoU'] <= 100
    assert metrics['diversity/lpips_diversity_seg-fcn_synthscenes-source'] > 0


def test_synthesize_tool_from_label_maps(trained, tiny_synthscenes, tmp_path):
    labels = tiny_synthscenes / 'source' / 'annotations' / 'val'
    out = tmp_path / 'out'
    synthesize_tool.main([STAGE2, str(trained / 'stage2' / 'iter_2.pth'), '--labels',
                          str(labels), '--out', str(out), '--num-samples', '2', '--cfg-options',
                          *options(tiny_synthscenes, stage1='/nonexistent.pth')])
    files = sorted(os.listdir(out))
    assert len(files) == 2 * len(os.listdir(labels))
    assert np.asarray(Image.open(out / files[0])).shape == (64, 64, 3)


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(ROOT, 'configs/sis-ug/*.py'))))
def test_configs_build(path, tiny_synthscenes):
    from catgen.registry import MODELS
    from catgen.utils.config import load_config
    cfg = load_config(path, {'model.prior_checkpoint': None, 'model.rearranger_checkpoint': None,
                             'model.latent_avg_samples': 16,
                             'train_dataloader.dataset.data_root': str(tiny_synthscenes)})
    model = MODELS.build(cfg.model)
    assert model.generator.size == 64 and model.proxy_resolution == 16
    hooks = [h['type'] for h in cfg.custom_hooks]
    if cfg.model.train_part == 'rearranger':
        assert 'ProxyMaskHook' in hooks and cfg.test_evaluator is None
    else:
        assert 'PriorInversionHook' in hooks and cfg.train_dataloader.dataset.num_shots in (1, 5)
        assert any(e['type'] == 'SegmentationMIoU' for e in cfg.test_evaluator)
        assert model.mapper.in_channels == (1 if cfg.model.mapper_input == 'edge' else 21)


def test_training_refuses_a_random_prior(tiny_synthscenes, tmp_path):
    opts = options(tiny_synthscenes, max_iters=1)
    opts[0] = 'model.prior_checkpoint=None'
    with pytest.raises(ValueError, match='trained prior'):
        train_tool.main([STAGE1, '--work-dir', str(tmp_path / 'w'), '--cfg-options', *opts])


def test_edit_tool_and_mapper_accuracy_tool(trained, tiny_synthscenes, tmp_path):
    import edit_images
    opts = options(tiny_synthscenes, stage1='/nonexistent.pth')
    out = tmp_path / 'edits'
    edited = edit_images.main([STAGE2, str(trained / 'stage2' / 'iter_2.pth'), '--num', '3',
                               '--out', str(out), '--steps', '2', '--cfg-options', *opts])
    assert edited.shape == (3, 3, 64, 64)
    assert len(list(out.glob('*.png'))) == 4 and (out / 'inversion.pth').is_file()
    grid = np.asarray(Image.open(out / 'grid.png'))
    assert grid.shape[0] == 5 * (128 + 2) + 2  # real | reconstruction | label | proxy | edit
    sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
    import sisug_mapper_accuracy as tool
    opts = [o for o in opts if not o.startswith('model.rearranger_checkpoint')]
    report = tool.main([STAGE2, '--rearranger-checkpoint', str(trained / 'stage1' / 'iter_2.pth'),
                        '--pairs', '1', '2', '--num-val', '3', '--iters', '3',
                        '--out', str(tmp_path / 'acc.json'), '--plot', str(tmp_path / 'acc.png'),
                        '--cfg-options', *opts, 'model.inversion.steps=2'])
    assert [r['pairs'] for r in report['results']] == [1, 2]
    for row in report['results']:
        assert 0 <= row['accuracy'] <= 100 and 0 <= row['lookup_miou'] <= 100
    assert (tmp_path / 'acc.png').is_file() and report['num_val'] == 3


def test_proxy_mask_hook_reuses_its_cache(trained, tiny_synthscenes, tmp_path):
    """A new run in the same work dir (not a resume) reads the cached centres back."""
    work = tmp_path / 'again'
    work.mkdir()
    import shutil
    shutil.copy(trained / 'stage1' / 'proxy_centres.pth', work / 'proxy_centres.pth')
    train_tool.main([STAGE1, '--work-dir', str(work), '--cfg-options',
                     *options(tiny_synthscenes, max_iters=1)])
    log = open(sorted(work.glob('*/*.log'))[-1]).read()
    assert 'centres read from' in log
    state = safe_load(work / 'iter_1.pth')['state_dict']
    assert torch.equal(state['centres'], safe_load(work / 'proxy_centres.pth')['centres'])


def test_diagnostics_tool(trained, tiny_synthscenes, tmp_path):
    sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
    import sisug_diagnostics as tool
    opts = options(tiny_synthscenes, stage1='/nonexistent.pth')
    report = tool.main([str(trained / 'stage2'), '--num-val', '3', '--num-sources', '1',
                        '--out', str(tmp_path / 'diag.json'), '--cfg-options', *opts,
                        'model.inversion.steps=2'])
    for key in ('reconstruction', 'rearranged_own', 'oracle_random', 'mapper_own',
                'mapper_random'):
        assert 0 <= report[key] <= 100, key
    assert 0 <= report['mapper_accuracy'] <= 100 and report['num_val'] == 3
    assert (trained / 'stage2' / 'diagnostics_inversion_3.pth').is_file()
