"""End to end through the tools: train a tiny StyleGAN2 on SynthScenes source images, resume it,
and generate N images with seeds and truncation."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import synthesize as synthesize_tool  # noqa: E402
import train as train_tool  # noqa: E402

from catgen.utils.checkpoint import safe_load  # noqa: E402

CONFIG = osp.join(ROOT, 'configs/stylegan2/stylegan2_synthscenes-source.py')


def options(data_root, max_iters=2):
    tiny = dict(max_channels=8, channel_base=128)
    return ([f'model.{net}.{k}={v}' for net in ('generator', 'discriminator')
             for k, v in tiny.items()] +
            ['model.generator.style_dim=8', 'model.generator.n_mlp=2',
             'model.r1_interval=2', 'model.path_length_interval=2',
             'train_dataloader.batch_size=2', f'train_dataloader.dataset.data_root={data_root}',
             f'val_dataloader.dataset.data_root={data_root}',
             f'test_dataloader.dataset.data_root={data_root}',
             f'train_cfg.max_iters={max_iters}', 'train_cfg.val_interval=1000',
             'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
             'custom_hooks.0.interval=2', 'custom_hooks.0.num_samples=3',
             'custom_hooks.0.num_noises=2'])


@pytest.fixture(scope='module')
def trained(tiny_synthscenes, tmp_path_factory):
    work = tmp_path_factory.mktemp('sg2') / 'work'
    train_tool.main([CONFIG, '--work-dir', str(work), '--cfg-options',
                     *options(tiny_synthscenes)])
    return work


def test_train_writes_checkpoint_and_grid_and_resumes(trained, tiny_synthscenes):
    state = safe_load(trained / 'iter_2.pth')
    keys = state['state_dict']
    assert state['meta']['iter'] == 2
    assert 'mean_path_length' in keys and float(keys['mean_path_length']) > 0
    assert any(k.startswith('generator_ema.module.style.') for k in keys)
    # grid without label maps: rows = 2 generated (fixed latents) + real, 3 columns of 64 px
    grid = np.asarray(Image.open(trained / 'samples' / 'final.png'))
    assert grid.shape == (3 * 66 + 2, 3 * 66 + 2, 3)
    runner = train_tool.build_runner([CONFIG, '--work-dir', str(trained), '--resume',
                                      '--cfg-options', *options(tiny_synthscenes, max_iters=4)])
    runner.train()
    assert runner.iter == 4 and (trained / 'iter_4.pth').is_file()
    resumed = safe_load(trained / 'iter_4.pth')['state_dict']
    assert not torch.equal(resumed['generator.conv1.conv.weight'],
                           keys['generator.conv1.conv.weight'])


def test_synthesize_tool_generates_n_images_with_seeds(trained, tiny_synthscenes, tmp_path):
    ckpt = str(trained / 'iter_2.pth')
    opts = ['--cfg-options', *options(tiny_synthscenes)]
    out = tmp_path / 'a'
    synthesize_tool.main([CONFIG, ckpt, '--num-images', '5', '--out', str(out), *opts])
    files = sorted(os.listdir(out))
    assert files == [f'{i:06d}.png' for i in range(5)]
    first = np.asarray(Image.open(out / '000003.png'))
    assert first.shape == (64, 64, 3)
    # the same seed gives the same image whatever else is generated; another seed another one
    os.remove(out / '000003.png')
    synthesize_tool.main([CONFIG, ckpt, '--num-images', '5', '--out', str(out), '--skip-existing',
                          *opts])
    again = np.asarray(Image.open(out / '000003.png'))
    assert np.abs(again.astype(int) - first).max() <= 1
    other = tmp_path / 'b'
    synthesize_tool.main([CONFIG, ckpt, '--num-images', '4', '--out', str(other), '--seed', '1',
                          '--truncation', '0.5', *opts])
    assert not np.array_equal(np.asarray(Image.open(other / '000003.png')), first)
    with pytest.raises(SystemExit):
        synthesize_tool.main([CONFIG, ckpt, '--out', str(other), *opts])  # neither option
    with pytest.raises(SystemExit, match='unconditional'):
        synthesize_tool.main([CONFIG, ckpt, '--labels', str(tiny_synthscenes), '--out',
                              str(other), *opts])
