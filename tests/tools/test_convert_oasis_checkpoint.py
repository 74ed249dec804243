"""Converting official OASIS state dicts.

The official state dicts are produced by a tiny module tree, written here, that reproduces the
official module names and structure (boschresearch/OASIS models/generator.py, discriminator.py,
norms.py) at a small width.
"""
import functools
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage
from torch.nn.utils import spectral_norm as sn

from catgen.models.discriminators.oasis_discriminator import OASISDiscriminator
from catgen.models.generators.oasis_generator import OASISGenerator
from catgen.models.oasis_checkpoint import convert_official_oasis_state_dict

NC, ZD = 5, 4  # classes (incl. don't care), noise channels


@pytest.fixture(autouse=True)
def _one_thread():
    """CPU tests run beside other processes on 2 cores: extra threads only oversubscribe."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---- official naming, tiny width --------------------------------------------------------------
class RefSPADE(nn.Module):
    def __init__(self, norm_nc, label_nc, hidden):
        super().__init__()
        self.first_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, 3, padding=1)

    def forward(self, x, seg):
        seg = F.interpolate(seg, size=x.shape[2:], mode='nearest')
        h = self.mlp_shared(seg)
        return self.first_norm(x) * (1 + self.mlp_gamma(h)) + self.mlp_beta(h)


class RefGBlock(nn.Module):
    def __init__(self, fin, fout, label_nc, hidden):
        super().__init__()
        mid = min(fin, fout)
        self.learned = fin != fout
        self.conv_0 = sn(nn.Conv2d(fin, mid, 3, padding=1))
        self.conv_1 = sn(nn.Conv2d(mid, fout, 3, padding=1))
        if self.learned:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = RefSPADE(fin, label_nc, hidden)
        self.norm_1 = RefSPADE(mid, label_nc, hidden)
        if self.learned:
            self.norm_s = RefSPADE(fin, label_nc, hidden)

    def forward(self, x, seg):
        xs = self.conv_s(self.norm_s(x, seg)) if self.learned else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        return xs + self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))


class RefG(nn.Module):
    def __init__(self, ch=2, hidden=8, start=(1, 1)):
        super().__init__()
        chans = [16 * ch, 16 * ch, 16 * ch, 8 * ch, 4 * ch, 2 * ch, ch]
        self.start = start
        self.conv_img = nn.Conv2d(ch, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.body = nn.ModuleList(RefGBlock(chans[i], chans[i + 1], NC + ZD, hidden)
                                  for i in range(6))
        self.fc = nn.Conv2d(NC + ZD, 16 * ch, 3, padding=1)

    def forward(self, seg, z):
        z = z[:, :, None, None].expand(-1, -1, *seg.shape[2:])
        seg = torch.cat((z, seg), 1)
        x = self.fc(F.interpolate(seg, size=self.start))
        for i, block in enumerate(self.body):
            x = block(x, seg)
            x = self.up(x) if i < 5 else x
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class RefDBlock(nn.Module):
    def __init__(self, fin, fout, up_or_down, first=False):
        super().__init__()
        self.up_or_down, self.first, self.learned = up_or_down, first, fin != fout
        conv = sn(nn.Conv2d(fin, fout, 3, 1, 1))
        if first:
            self.conv1 = nn.Sequential(conv)
        elif up_or_down > 0:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2), conv)
        else:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), conv)
        self.conv2 = nn.Sequential(nn.LeakyReLU(0.2), sn(nn.Conv2d(fout, fout, 3, 1, 1)))
        if self.learned:
            self.conv_s = sn(nn.Conv2d(fin, fout, 1, 1, 0))
        self.sampling = nn.Upsample(scale_factor=2) if up_or_down > 0 else nn.AvgPool2d(2)

    def forward(self, x):
        dx = self.conv2(self.conv1(x))
        if self.up_or_down < 0:
            dx = self.sampling(dx)
        if self.first:
            xs = self.sampling(x)
            xs = self.conv_s(xs) if self.learned else xs
        else:
            xs = self.sampling(x) if self.up_or_down > 0 else x
            xs = self.conv_s(xs) if self.learned else xs
            xs = self.sampling(xs) if self.up_or_down < 0 else xs
        return xs + dx


class RefD(nn.Module):
    def __init__(self, chans=(3, 4, 4, 8, 8, 16, 16), last=2):
        super().__init__()
        n = len(chans) - 1
        self.body_up = nn.ModuleList([RefDBlock(chans[-1], chans[-2], 1)])
        self.body_down = nn.ModuleList(RefDBlock(chans[i], chans[i + 1], -1, first=i == 0)
                                       for i in range(n))
        for i in range(1, n - 1):
            self.body_up.append(RefDBlock(2 * chans[-1 - i], chans[-2 - i], 1))
        self.body_up.append(RefDBlock(2 * chans[1], last, 1))
        self.layer_up_last = nn.Conv2d(last, NC + 1, 1, 1, 0)

    def forward(self, x):
        res = []
        for block in self.body_down:
            x = block(x)
            res.append(x)
        x = self.body_up[0](x)
        for i in range(1, len(self.body_down)):
            x = self.body_up[i](torch.cat((res[-i - 1], x), 1))
        return self.layer_up_last(x)


# ---- helpers ----------------------------------------------------------------------------------
def seg_batch(b=2, size=32):
    label = torch.randint(0, NC, (b, size, size), generator=torch.Generator().manual_seed(0))
    return F.one_hot(label, NC).permute(0, 3, 1, 2).float()


@functools.lru_cache(maxsize=None)
def trained_refs():
    """Official-named G, EMA and D with non-trivial weights, BN stats and spectral-norm u/v.

    Shared by the tests (cached): treat as read-only.
    """
    torch.manual_seed(0)
    g, ema, d = RefG(), RefG(), RefD()
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(0.01)
        for m in (g, ema, d):
            m.train()
            for _ in range(2):
                (m(seg_batch(), torch.randn(2, ZD)) if m is not d else m(torch.randn(2, 3, 64, 64)))
    return g, ema, d


class Holder(nn.Module):
    """What the synthesizer holds: generator, discriminator, generator_ema."""

    def __init__(self, g_cfg, d_cfg):
        super().__init__()
        self.generator = OASISGenerator(**g_cfg)
        self.discriminator = OASISDiscriminator(**d_cfg)
        self.generator_ema = ExponentialMovingAverage(self.generator, momentum=1e-4)


def build_from_meta(meta):
    g_cfg = {k: v for k, v in meta['generator_cfg'].items() if k != 'type'}
    d_cfg = {k: v for k, v in meta['discriminator_cfg'].items() if k != 'type'}
    return Holder(g_cfg, d_cfg)


# ---- tests ------------------------------------------------------------------------------------
def test_convert_and_outputs_equal():
    g, ema, d = trained_refs()
    dp = {f'module.{k}': v for k, v in d.state_dict().items()}  # DataParallel prefix
    ckpt = convert_official_oasis_state_dict(g.state_dict(), dp, ema.state_dict(),
                                             num_classes=NC, z_dim=ZD, crop_size=32)
    meta, sd = ckpt['meta'], ckpt['state_dict']
    assert meta['num_classes'] == NC and meta['filled_keys'] == []
    assert meta['generator_cfg'] == dict(
        type='OASISGenerator', num_classes=NC, z_dim=ZD, base_channels=2,
        channel_multipliers=(16, 16, 16, 8, 4, 2, 1), spectral_norm=True, spade_hidden=8,
        crop_size=32, aspect_ratio=1.0)
    assert meta['discriminator_cfg'] == dict(
        type='OASISDiscriminator', num_classes=NC, base_channels=2,
        channel_multipliers=(2, 2, 4, 4, 8, 8), spectral_norm=True)
    assert sd['generator_ema.steps'].dtype == torch.long and sd['generator_ema.steps'] == 0
    assert 'generator.body.0.norm_0.param_free_norm.running_mean' in sd
    assert 'discriminator.body_down.0.conv1.0.weight_u' in sd

    holder = build_from_meta(meta)
    holder.load_state_dict(sd, strict=True)
    holder.eval()
    g.eval(), ema.eval(), d.eval()
    seg, z, img = seg_batch(), torch.randn(2, ZD), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(holder.generator(seg, z), g(seg, z), atol=1e-6)
        assert torch.allclose(holder.generator_ema.module(seg, z), ema(seg, z), atol=1e-6)
        assert not torch.allclose(holder.generator(seg, z), ema(seg, z), atol=1e-6)
        assert torch.allclose(holder.discriminator(img), d(img), atol=1e-6)


def test_official_width_shapes_validate():
    """Official-width state dicts (built on 'meta': shapes only) convert for ADE20K."""
    with torch.device('meta'):
        g, d = RefG(ch=64, hidden=128), RefD((3, 128, 128, 256, 256, 512, 512), last=64)
        d.layer_up_last = nn.Conv2d(64, 152, 1)  # ADE20K: 151 + 1
        g.fc = nn.Conv2d(151 + 64, 1024, 3, padding=1)
        for m in g.modules():  # SPADE convs read 151 + 64 channels
            if isinstance(m, RefSPADE):
                m.mlp_shared[0] = nn.Conv2d(215, 128, 3, padding=1)
    ckpt = convert_official_oasis_state_dict(g.state_dict(), d.state_dict())
    assert ckpt['meta']['num_classes'] == 151
    assert ckpt['meta']['generator_cfg']['base_channels'] == 64
    n_g = sum(v.numel() for k, v in ckpt['state_dict'].items() if k.startswith('generator.')
              and not k.endswith(('_u', '_v', 'running_mean', 'running_var', 'tracked')))
    assert n_g == 74_314_691


def test_errors_list_unmapped_missing_and_mismatched():
    g, _, d = trained_refs()
    sd = dict(g.state_dict())
    sd['extra.weight'] = torch.zeros(1)
    del sd['conv_img.bias']
    sd['body.0.norm_0.mlp_gamma.bias'] = torch.zeros(7)
    with pytest.raises(ValueError) as err:
        convert_official_oasis_state_dict(generator=sd, z_dim=ZD)
    msg = str(err.value)
    assert 'extra.weight' in msg and 'conv_img.bias' in msg
    assert 'body.0.norm_0.mlp_gamma.bias: official (7,) vs catgen (32,)' in msg
    with pytest.raises(ValueError, match='disagree on num_classes'):
        convert_official_oasis_state_dict(g.state_dict(), d.state_dict(), z_dim=ZD, num_classes=6)
    with pytest.raises(ValueError, match='disagree on num_classes'):  # wrong z_dim
        convert_official_oasis_state_dict(g.state_dict(), d.state_dict(), z_dim=3)
    with pytest.raises(ValueError, match='does not look like'):
        convert_official_oasis_state_dict(discriminator={'foo': torch.zeros(1)})


def test_missing_bn_step_counters_are_filled():
    g = RefG()
    sd = {k: v for k, v in g.state_dict().items() if not k.endswith('num_batches_tracked')}
    ckpt = convert_official_oasis_state_dict(generator=sd, z_dim=ZD)
    assert ckpt['meta']['filled_keys'] and all(
        ckpt['state_dict'][k] == 0 for k in ckpt['meta']['filled_keys'])


def test_cli(tmp_path):
    g, ema, d = trained_refs()
    for name, m in (('G', g), ('D', d), ('EMA', ema)):
        torch.save(m.state_dict(), tmp_path / f'latest_{name}.pth')
    spec = importlib.util.spec_from_file_location(
        'convert_oasis_checkpoint',
        Path(__file__).parents[2] / 'tools' / 'convert_oasis_checkpoint.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'out' / 'catgen.pth'
    assert tool.main(['--generator', str(tmp_path / 'latest_G.pth'),
                      '--discriminator', str(tmp_path / 'latest_D.pth'),
                      '--ema', str(tmp_path / 'latest_EMA.pth'), '--out', str(out),
                      '--num-classes', str(NC), '--z-dim', str(ZD), '--crop-size', '32']) == 0
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert sorted(ckpt) == ['meta', 'state_dict']
    assert ckpt['meta']['parts'] == ['discriminator', 'generator', 'generator_ema']
    build_from_meta(ckpt['meta']).load_state_dict(ckpt['state_dict'], strict=True)
    assert [p.name for p in out.parent.iterdir()] == ['catgen.pth']  # no temporary left
    with pytest.raises(SystemExit, match='num_classes'):
        tool.main(['--discriminator', str(tmp_path / 'latest_D.pth'), '--out', str(out),
                   '--num-classes', '151'])
