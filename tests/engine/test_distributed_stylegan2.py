"""StyleGAN2 under DDP: 2 CPU processes (torchrun through tools/dist_train.sh, gloo) train with
the lazy R1 (a gradient penalty: double backward through the DDP-wrapped discriminator) and the
lazy path-length penalty, and every rank ends with the same G, D and EMA."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

PROBE = '''
import os
import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from catgen.registry import HOOKS


@HOOKS.register_module(force=True)
class SG2ProbeHook(Hook):
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.logged = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.logged.append(sorted(outputs))

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        rank = dist.get_rank() if dist.is_initialized() else 0
        torch.save(dict(state=state, logged=self.logged, wrapper=type(runner.model).__name__),
                   os.path.join(self.out_dir, f'rank{rank}.pth'))
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_two_processes(config, overrides, tmp_path, name):
    """Train ``config`` with ``overrides`` in 2 CPU processes (tools/dist_train.sh, gloo), the
    probe hook dumping each rank's final state: ``(rank 0 dump, rank 1 dump, work dir)``."""
    probe_dir, dumps = tmp_path / 'probe', tmp_path / 'dumps'
    probe_dir.mkdir()
    dumps.mkdir()
    (probe_dir / 'catgen_sg2_probe.py').write_text(PROBE)
    cfg = Config.fromfile(osp.join(ROOT, config))
    hooks = overrides.pop('custom_hooks', [])
    cfg.merge_from_dict(dict(overrides, **{
        'custom_imports': dict(imports=['catgen_sg2_probe'], allow_failed_imports=False),
        'custom_hooks': hooks + [dict(type='SG2ProbeHook', out_dir=str(dumps))],
        'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
        'test_cfg': None, 'test_dataloader': None, 'test_evaluator': None,
    }))
    cfg_path = str(tmp_path / f'{name}.py')
    cfg.dump(cfg_path)
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(free_port()), PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(probe_dir), ROOT, os.environ.get('PYTHONPATH', '')]))
    out = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_path, '2',
                          '--work-dir', str(tmp_path / 'work')], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    r0, r1 = (torch.load(dumps / f'rank{r}.pth', weights_only=True) for r in (0, 1))
    return r0, r1, tmp_path / 'work'


@pytest.mark.slow
def test_two_processes_keep_identical_stylegan2_with_lazy_regularisers(
        tiny_synthscenes, tmp_path):
    tiny = dict(max_channels=8, channel_base=128)
    r0, r1, work = train_two_processes('configs/stylegan2/stylegan2_synthscenes-source.py', {
        'model.generator': dict(style_dim=8, n_mlp=2, **tiny),
        'model.discriminator': tiny,
        'model.r1_interval': 2, 'model.path_length_interval': 2,
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.data_root': str(tiny_synthscenes),
        'train_cfg.max_iters': 4, 'train_cfg.val_interval': 100,
        'default_hooks.checkpoint.interval': 4, 'default_hooks.logger.interval': 1,
    }, tmp_path, 'dist_tiny_stylegan2')
    assert r0['wrapper'] == 'SeparateDistributedDataParallel'
    # iterations 0 and 2 ran the R1 and path-length updates
    assert 'loss_d_r1' in r0['logged'][0] and 'loss_g_path' in r0['logged'][2]
    assert 'loss_d_r1' not in r0['logged'][1]
    unequal = [k for k in r0['state'] if not torch.equal(r0['state'][k], r1['state'][k])]
    # the ranks see different images and draw different latents, yet every update is the
    # all-reduced one: G, D and the EMA stay identical (mean_path_length is per rank, as in
    # the official code)
    assert unequal == ['mean_path_length'] or unequal == [], unequal[:5]
    assert (work / 'iter_4.pth').is_file()
