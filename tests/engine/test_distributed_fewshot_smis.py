"""Fewshot-SMIS under DDP: 2 CPU processes (torchrun through tools/dist_train.sh, gloo); rank 0
inverts the labelled shot and the other rank reads the cache; each rank labels its own random
samples and the encoder's gradients are averaged, so every rank ends with the same encoder."""
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

from tests.engine.test_distributed_stylegan2 import PROBE, free_port

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_two_processes_share_the_inversion_and_keep_one_encoder(tiny_synthscenes, tmp_path):
    import subprocess
    probe_dir, dumps = tmp_path / 'probe', tmp_path / 'dumps'
    probe_dir.mkdir()
    dumps.mkdir()
    (probe_dir / 'catgen_sg2_probe.py').write_text(PROBE)
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs/fewshot-smis/fewshot-smis_synthscenes-source_1shot.py'))
    cfg.merge_from_dict({
        'model.prior_checkpoint': None, 'model.latent_avg_samples': 16,
        'model.prior': dict(max_channels=8, channel_base=128, style_dim=8, n_mlp=2),
        'model.encoder': dict(widths=(4, 4, 8, 8), units=(1, 1, 1, 1)),
        'model.inversion': dict(steps=3),
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.data_root': str(tiny_synthscenes),
        'train_cfg.max_iters': 3, 'train_cfg.val_interval': 100,
        'default_hooks.checkpoint.interval': 3, 'default_hooks.logger.interval': 1,
        'custom_imports': dict(imports=['catgen_sg2_probe'], allow_failed_imports=False),
        'custom_hooks': [dict(type='PriorInversionHook'),
                         dict(type='SG2ProbeHook', out_dir=str(dumps))],
        'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
        'test_cfg': None, 'test_dataloader': None, 'test_evaluator': None,
    })
    cfg_path = str(tmp_path / 'dist_tiny_fewshot_smis.py')
    cfg.dump(cfg_path)
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(free_port()), PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(probe_dir), ROOT, os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_path, '2',
                          '--work-dir', str(tmp_path / 'work')], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    r0, r1 = (torch.load(dumps / f'rank{r}.pth', weights_only=True) for r in (0, 1))
    assert r0['wrapper'] == 'SeparateDistributedDataParallel'
    assert r0['logged'][0] == ['loss_w']
    params = [k for k in r0['state'] if k.startswith('encoder.') and 'running_' not in k
              and 'num_batches' not in k]
    assert params and all(torch.equal(r0['state'][k], r1['state'][k]) for k in params)
    prior = [k for k in r0['state'] if k.startswith('generator.')]
    assert all(torch.equal(r0['state'][k], r1['state'][k]) for k in prior)
    assert (tmp_path / 'work' / 'iter_3.pth').is_file()
    assert (tmp_path / 'work' / 'prior_inversion.pth').is_file()
