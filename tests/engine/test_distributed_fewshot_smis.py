"""Fewshot-SMIS under DDP: 2 CPU processes (torchrun through tools/dist_train.sh, gloo); rank 0
inverts the labelled shot and the other rank reads the cache; each rank labels its own random
samples and the encoder's gradients are averaged, so every rank ends with the same encoder."""
import pytest
import torch

from tests.engine.test_distributed_stylegan2 import train_two_processes
from tests.tools.test_fewshot_smis_tools import tiny_prior_file


@pytest.mark.slow
def test_two_processes_share_the_inversion_and_keep_one_encoder(tiny_synthscenes, tmp_path):
    r0, r1, work = train_two_processes(
        'configs/fewshot-smis/fewshot-smis_synthscenes-source_1shot.py', {
            'model.prior_checkpoint': tiny_prior_file(tmp_path), 'model.latent_avg_samples': 16,
            'model.prior': dict(max_channels=8, channel_base=128, style_dim=8, n_mlp=2),
            'model.encoder': dict(widths=(4, 4, 8, 8), units=(1, 1, 1, 1)),
            'model.inversion': dict(steps=3),
            'train_dataloader.batch_size': 2,
            'train_dataloader.dataset.data_root': str(tiny_synthscenes),
            'train_cfg.max_iters': 3, 'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 3, 'default_hooks.logger.interval': 1,
            'custom_hooks': [dict(type='PriorInversionHook')],
        }, tmp_path, 'dist_tiny_fewshot_smis')
    assert r0['wrapper'] == 'SeparateDistributedDataParallel'
    assert r0['logged'][0] == ['loss_w']
    params = [k for k in r0['state'] if k.startswith('encoder.') and 'running_' not in k
              and 'num_batches' not in k]
    assert params and all(torch.equal(r0['state'][k], r1['state'][k]) for k in params)
    prior = [k for k in r0['state'] if k.startswith('generator.')]
    assert all(torch.equal(r0['state'][k], r1['state'][k]) for k in prior)
    assert (work / 'iter_3.pth').is_file() and (work / 'prior_inversion.pth').is_file()
