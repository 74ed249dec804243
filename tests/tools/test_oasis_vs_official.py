"""tools/benchmarks/oasis_vs_official.py end to end, against a stand-in for the official code.

catgen never ships the official OASIS code, so the test writes a small package with the official
layout and API (``models/models.py``: ``OASIS_model``, ``put_on_multi_gpus``,
``preprocess_input``; ``models/losses.py``: ``losses_computer``; ``utils/utils.py``:
``update_EMA``) whose networks are catgen's, drawing their noise inside ``forward`` as the
official generator does. The tool must find outputs identical, time both sides and write the
report; a stand-in that computes something else must be refused.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, 'tools', 'benchmarks', 'oasis_vs_official.py')

FILES = {
    'models/generator.py': '''
        import torch
        from catgen.models.generators.oasis_generator import OASISGenerator

        class OASIS_Generator(OASISGenerator):
            def __init__(self, opt):
                super().__init__(num_classes=opt.semantic_nc, z_dim=opt.z_dim,
                                 base_channels=opt.channels_G, crop_size=opt.crop_size)
                self.opt = opt

            def forward(self, seg):  # the official generator draws its noise itself
                z = torch.randn(seg.size(0), self.opt.z_dim)
                return SCALE * super().forward(seg, z)
        SCALE = 1.0
        ''',
    'models/discriminator.py': '''
        from catgen.models.discriminators.oasis_discriminator import OASISDiscriminator

        class OASIS_Discriminator(OASISDiscriminator):
            def __init__(self, opt):
                super().__init__(num_classes=opt.semantic_nc)

            def forward(self, x):
                return super().forward(x)
        ''',
    'models/losses.py': '''
        import torch.nn.functional as F
        from catgen.models.losses.oasis_loss import OASISLoss

        class losses_computer:
            def __init__(self, opt):
                self.n1 = OASISLoss()

            def loss(self, output, label, for_real):
                return self.n1(output, label, for_real)

            def loss_labelmix(self, mask, mixed, fake, real):
                return F.mse_loss(mask * real + (1 - mask) * fake, mixed)
        ''',
    'models/models.py': '''
        import copy
        import torch
        import torch.nn as nn
        import models.generator as generators
        import models.discriminator as discriminators

        class OASIS_model(nn.Module):
            def __init__(self, opt):
                super().__init__()
                self.opt = opt
                self.netG = generators.OASIS_Generator(opt)
                self.netD = discriminators.OASIS_Discriminator(opt)
                with torch.no_grad():
                    self.netEMA = copy.deepcopy(self.netG)

            def forward(self, image, label, mode, losses_computer):
                if mode == 'losses_G':
                    loss = losses_computer.loss(self.netD(self.netG(label)), label, True)
                    return loss, [loss]
                with torch.no_grad():
                    fake = self.netG(label)
                loss = (losses_computer.loss(self.netD(fake), label, False)
                        + losses_computer.loss(self.netD(image), label, True))
                return loss, [loss]

        def put_on_multi_gpus(model, opt):
            model.module = model
            return model

        def preprocess_input(opt, data):
            label = data['label'].long()
            bs, _, h, w = label.size()
            seg = torch.zeros(bs, opt.semantic_nc, h, w).scatter_(1, label, 1.0)
            return data['image'], seg
        ''',
    'utils/utils.py': '''
        import torch

        def update_EMA(model, cur_iter, dataloader, opt, force_run_stats=False):
            with torch.no_grad():
                ema, g = model.module.netEMA.state_dict(), model.module.netG.state_dict()
                for k in ema:
                    if ema[k].is_floating_point():
                        ema[k].copy_(ema[k] * opt.EMA_decay + g[k] * (1 - opt.EMA_decay))
        ''',
}


def make_official(root, scale=1.0):
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).replace('SCALE = 1.0', f'SCALE = {scale}'))
    return root


def run_tool(official, out, *extra):
    cmd = [sys.executable, TOOL, '--official-dir', str(official), '--setting', '64',
           '--width', '1', '--batch-size', '1', '--num-classes', '3', '--rounds', '1',
           '--iters', '1', '--warmup', '0', '--threads', '1', '--out', str(out), *extra]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)


def test_times_both_sides_on_the_same_weights(tmp_path):
    official = make_official(tmp_path / 'OASIS')
    out = tmp_path / 'report.json'
    proc = run_tool(official, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    entry = report['settings']['64']
    assert entry['setting'] == dict(num_res_blocks=6, channels_G=1, crop_size=64, batch_size=1,
                                    semantic_nc=3)
    assert {k: v['bit_identical'] for k, v in entry['check'].items()} == dict(
        generator=True, generator_ema=True, discriminator=True)
    assert entry['check']['generator']['shape'] == [1, 3, 64, 64]
    for side in ('official', 'catgen'):
        s = entry[side]
        assert s['s_per_iter'] > 0 and s['peak_memory_mb'] > 0 and len(s['rounds']) == 1
        assert s['threads'] == 1
    assert entry['ratio'] == pytest.approx(entry['catgen']['s_per_iter']
                                           / entry['official']['s_per_iter'])
    assert 'outputs bit-identical' in proc.stdout and 'catgen / official' in proc.stdout


def test_refuses_when_the_official_model_computes_something_else(tmp_path):
    official = make_official(tmp_path / 'OASIS', scale=0.5)
    out = tmp_path / 'report.json'
    proc = run_tool(official, out)
    assert proc.returncode != 0
    assert 'generator outputs differ' in proc.stderr + proc.stdout
    assert not out.exists()


def test_names_the_missing_checkout(tmp_path):
    proc = run_tool(tmp_path / 'nowhere', tmp_path / 'report.json')
    assert proc.returncode != 0
    assert 'boschresearch/OASIS' in proc.stderr and 'nowhere' in proc.stderr


@pytest.mark.parametrize('flag, message', [('--amp', 'CUDA'), ('--compile', 'not supported')])
def test_refuses_options_it_cannot_honour(tmp_path, flag, message):
    official = make_official(tmp_path / 'OASIS')
    proc = run_tool(official, tmp_path / 'report.json', flag)
    assert proc.returncode != 0 and message in proc.stderr
    assert not (tmp_path / 'report.json').exists()
