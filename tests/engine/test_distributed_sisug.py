"""SIS-UG stage 1 under DDP: 2 CPU processes (torchrun through tools/dist_train.sh, gloo); every
rank fits the same proxy-mask centres (seeded), draws its own random samples, and the
rearranger's gradients are averaged, so every rank ends with the same rearranger."""
import pytest
import torch

from tests.engine.test_distributed_stylegan2 import train_two_processes
from tests.tools.test_fewshot_smis_tools import tiny_prior_file


@pytest.mark.slow
def test_two_processes_keep_one_rearranger_and_the_same_centres(tiny_synthscenes, tmp_path):
    r0, r1, work = train_two_processes(
        'configs/sis-ug/sis-ug_rearranger_synthscenes-source.py', {
            'model.prior_checkpoint': tiny_prior_file(tmp_path), 'model.latent_avg_samples': 16,
            'model.prior': dict(max_channels=8, channel_base=128, style_dim=8, n_mlp=2),
            'model.num_clusters': 4, 'model.kmeans': dict(num_samples=8),
            'model.rearranger': dict(embed_channels=8, heads=1, head_channels=8),
            'train_dataloader.batch_size': 2,
            'train_dataloader.dataset.data_root': str(tiny_synthscenes),
            'train_cfg.max_iters': 3,
            'default_hooks.checkpoint.interval': 3, 'default_hooks.logger.interval': 1,
            'custom_hooks': [dict(type='ProxyMaskHook', interval=0)],
        }, tmp_path, 'dist_tiny_sisug')
    assert r0['wrapper'] == 'SeparateDistributedDataParallel'
    assert set(r0['logged'][0]) >= {'loss_rec', 'loss_mask', 'loss_style'}
    params = [k for k in r0['state'] if k.startswith('rearranger.')]
    assert params and all(torch.equal(r0['state'][k], r1['state'][k]) for k in params)
    assert torch.equal(r0['state']['centres'], r1['state']['centres'])
    assert r0['state']['centres'].abs().sum() > 0
    assert (work / 'iter_3.pth').is_file() and (work / 'proxy_centres.pth').is_file()
