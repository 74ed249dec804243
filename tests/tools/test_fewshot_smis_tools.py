"""Fewshot-SMIS end to end through the tools on tiny SynthScenes data and a tiny random prior:
train (inversion hook, pictures, checkpoint), resume, test (metrics in the source segmenter of
the model zoo, multimodal diversity) and synthesize from a folder of label maps."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import synthesize as synthesize_tool  # noqa: E402
import test as test_tool  # noqa: E402
import train as train_tool  # noqa: E402

from catgen.utils.checkpoint import safe_load  # noqa: E402

SPARSE = osp.join(ROOT, 'configs/fewshot-smis/fewshot-smis_synthscenes-source_1shot-sparse.py')
DENSE = osp.join(ROOT, 'configs/fewshot-smis/fewshot-smis_synthscenes-source_5shot.py')


TINY_PRIOR = dict(type='StyleGAN2Generator', size=64, style_dim=8, n_mlp=2, channel_multiplier=1,
                  max_channels=8, channel_base=128, fused_modconv=False)


def tiny_prior_file(directory):
    """A prior checkpoint with seeded random weights of the tiny test architecture."""
    import torch

    from catgen.models import StyleGAN2Generator
    torch.manual_seed(0)
    path = osp.join(str(directory), 'tiny_prior.pth')
    kwargs = {k: v for k, v in TINY_PRIOR.items() if k != 'type'}
    torch.save({f'generator_ema.module.{k}': v
                for k, v in StyleGAN2Generator(**kwargs).state_dict().items()}, path)
    return path


def options(data_root, max_iters=2):
    prior = tiny_prior_file(data_root)
    return [f'model.prior_checkpoint={prior}', 'model.prior.max_channels=8',
            'model.prior.channel_base=128', 'model.prior.style_dim=8', 'model.prior.n_mlp=2',
            'model.encoder.widths=(4,4,8,8)', 'model.encoder.units=(1,1,1,1)',
            'model.inversion.steps=3', 'model.latent_avg_samples=32',
            'train_dataloader.batch_size=2', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=1000',
            'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
            'custom_hooks.0.num_samples=3', 'custom_hooks.1.interval=2',
            'custom_hooks.1.num_samples=3']


@pytest.fixture(scope='module')
def trained(tiny_synthscenes, tmp_path_factory):
    work = tmp_path_factory.mktemp('fsmis') / 'work'
    train_tool.main([SPARSE, '--work-dir', str(work), '--cfg-options',
                     *options(tiny_synthscenes)])
    return work


def test_train_inverts_the_shot_draws_pictures_and_resumes(trained, tiny_synthscenes):
    ids = (trained / 'train_ids.txt').read_text().split()
    assert len(ids) == 1
    cache = safe_load(trained / 'prior_inversion.pth')
    assert cache['latents'].shape == (1, 10, 8)
    for name, rows in (('inversion.png', 4), ('pseudo_labels.png', 2)):
        img = np.asarray(Image.open(trained / name))
        assert img.shape[0] == rows * (128 + 2) + 2  # 64 px tiles at scale 2
    state = safe_load(trained / 'iter_2.pth')
    keys = state['state_dict']
    assert any(k.startswith('encoder.styles.') for k in keys)
    assert 'latent_avg' in keys and not any(k.startswith('prototypes') for k in keys)
    runner = train_tool.build_runner([SPARSE, '--work-dir', str(trained), '--resume',
                                      '--cfg-options', *options(tiny_synthscenes, max_iters=3),
                                      'default_hooks.checkpoint.max_keep_ckpts=2'])
    runner.train()
    assert runner.iter == 3
    log = open(sorted(trained.glob('*/*.log'))[-1]).read()
    assert 'read from' in log  # the resumed run reads the cached inversion


def test_test_tool_scores_with_scribbles_against_dense_maps(trained, tiny_synthscenes, tmp_path):
    out = tmp_path / 'test'
    config = tmp_path / 'eval.py'
    config.write_text(f"_base_ = ['{SPARSE}']\n"
                      "test_evaluator = [_base_.test_evaluator[0], _base_.test_evaluator[2]]\n")
    metrics = test_tool.main([str(config), str(trained / 'iter_2.pth'), '--work-dir', str(out),
                              '--cfg-options', *options(tiny_synthscenes),
                              'model.num_eval_samples=2'])
    key = 'diversity/lpips_diversity_seg-fcn_synthscenes-source'
    assert metrics[key] > 0  # multimodal: the samples of one map differ
    assert metrics['diversity/lpips_diversity_seg-fcn_synthscenes-source_maps'] == 8
    assert 0 <= metrics['seg/mIoU'] <= 100
    assert json.load(open(out / 'metrics.json'))[key] == pytest.approx(metrics[key])


def test_synthesize_tool_from_label_maps(trained, tiny_synthscenes, tmp_path):
    labels = tiny_synthscenes / 'source' / 'annotations' / 'val'
    out = tmp_path / 'out'
    synthesize_tool.main([SPARSE, str(trained / 'iter_2.pth'), '--labels', str(labels),
                          '--out', str(out), '--num-samples', '2', '--cfg-options',
                          *options(tiny_synthscenes)])
    files = sorted(os.listdir(out))
    assert len(files) == 2 * len(os.listdir(labels))
    assert np.asarray(Image.open(out / files[0])).shape == (64, 64, 3)


def test_dense_config_trains_with_five_shots(tiny_synthscenes, tmp_path):
    work = tmp_path / 'dense'
    train_tool.main([DENSE, '--work-dir', str(work), '--cfg-options',
                     *options(tiny_synthscenes, max_iters=1)])
    assert len((work / 'train_ids.txt').read_text().split()) == 5
    assert safe_load(work / 'prior_inversion.pth')['latents'].shape[0] == 5


def test_pseudo_label_quality_tool(trained, tmp_path):
    sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
    import fewshot_smis_pseudo_labels as tool
    out = tmp_path / 'pl.json'
    (result,) = tool.main([str(trained), '--num-samples', '4', '--ceiling', '2', '--out', str(out)])
    assert result['mode'] == 'sparse' and result['shots'] == 1
    assert 0 < result['coverage'] < 1  # sparse: some pixels stay unlabelled
    assert 0 <= result['miou'] <= 100 or result['miou'] != result['miou']
    assert result['classes_in_shots'] and all(isinstance(c, str)
                                              for c in result['classes_in_shots'])
    assert set(result['latent_mse']) == {'encoder', 'w_avg', 'ridge_4x4'}
    assert 0 <= result['ceiling_miou'] <= 100
    assert json.load(open(out))[0]['run'] == str(trained)


def test_training_refuses_a_random_prior_and_inference_does_not_reread_it(
        tiny_synthscenes, tmp_path):
    from catgen.utils.config import inference_model_cfg, load_config
    opts = options(tiny_synthscenes, max_iters=1)
    opts[0] = 'model.prior_checkpoint=None'
    with pytest.raises(ValueError, match='trained prior'):
        train_tool.main([DENSE, '--work-dir', str(tmp_path / 'w'), '--cfg-options', *opts])
    cfg = load_config(DENSE, {f'{k}.dataset.data_root': str(tiny_synthscenes)
                              for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')})
    assert cfg.model.prior_checkpoint == 'zoo://stylegan2_synthscenes-source'
    # the trained checkpoint holds the prior: tools/test.py and synthesize.py do not read it
    assert inference_model_cfg(cfg.model, has_checkpoint=True)['prior_checkpoint'] is None
