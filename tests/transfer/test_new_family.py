"""A new generator family, defined here, works with every transfer strategy unchanged.

The toy generator and discriminator below implement catgen's model protocol
(``catgen.models.protocol``) in a few layers and are registered from this module, as a plugin
would. Every trained strategy then runs 2 iterations through MMEngine's Runner (so the
TransferHook reaches it), and training-free CAT builds: nothing in catgen names their layers.
docs/conventions.md ("Adding a generator family") walks through the same code.
"""
import os.path as osp
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from catgen.affinity import AffinityMatrix
from catgen.models.protocol import ClassSlice, TransferableDiscriminator, TransferableGenerator
from catgen.registry import MODELS
from catgen.structures import SISDataSample

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from strategy_runner import run_two_iterations  # noqa: E402

SIZE = 16
SOURCE = ['sky', 'grass', 'water', 'rock']  # 5 channels with don't care
TARGET = ['lawn', 'lake', 'stone']  # 4 channels


@MODELS.register_module(force=True)
class ToyGenerator(TransferableGenerator, nn.Module):
    """noise + label map -> conv -> norm (optional scale/shift) -> conv -> conv -> tanh.

    Args:
        num_classes: label channels (don't care included).
        z_dim: noise channels concatenated in front of the label map.
        width: feature channels.
        norm_affine: a per-channel scale/shift after the norm (BSA's site).
    """

    def __init__(self, num_classes, z_dim=3, width=8, norm_affine=False):
        super().__init__()
        self.num_classes, self.z_dim, self.output_size = num_classes, z_dim, (SIZE, SIZE)
        self.inp = nn.Conv2d(z_dim + num_classes, width, 3, padding=1)
        self.norm = nn.BatchNorm2d(width, affine=norm_affine)
        self.mid = nn.Conv2d(width, width, 3, padding=1)
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def class_slices(self):
        return [ClassSlice('inp', 'input', self.z_dim)]  # label channels after the noise

    def feature_levels(self):
        return ('inp', 'mid')

    def scale_shift(self):
        if not self.norm.affine:
            return OrderedDict()
        return OrderedDict(norm=(self.norm.weight, self.norm.bias))

    def adapter_keys(self):
        return ['norm.weight', 'norm.bias'] if self.norm.affine else []

    def forward(self, seg, z=None, return_features=False):
        b, _, h, w = seg.shape
        z = torch.randn(b, self.z_dim, device=seg.device) if z is None else z
        x = torch.cat([z[:, :, None, None].expand(b, self.z_dim, h, w), seg], 1)
        feats = OrderedDict()
        feats['inp'] = x = F.leaky_relu(self.norm(self.inp(x)), 0.2)
        feats['mid'] = x = F.leaky_relu(self.mid(x), 0.2)
        img = torch.tanh(self.out(x))
        return (img, feats) if return_features else img


@MODELS.register_module(force=True)
class ToyDiscriminator(TransferableDiscriminator, nn.Module):
    """image -> conv -> conv -> 1x1 head with N+1 outputs per pixel (row 0 = fake), as OASIS."""

    def __init__(self, num_classes, width=8):
        super().__init__()
        self.num_classes = num_classes
        self.conv0 = nn.Conv2d(3, width, 3, padding=1)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.head = nn.Conv2d(width, num_classes + 1, 1)

    def class_slices(self):
        return [ClassSlice('head', 'output', 1)]

    def feature_levels(self):
        return ('conv0', 'conv1')

    def input_levels(self):
        return [['conv0'], ['conv1']]

    def log_likelihood(self, output, seg, kind='real'):
        return (torch.logsumexp(output[:, 1:], 1) - torch.logsumexp(output, 1)).mean()

    def forward(self, img, seg=None, return_features=False):
        feats = OrderedDict()
        feats['conv0'] = x = F.leaky_relu(self.conv0(img), 0.2)
        feats['conv1'] = x = F.leaky_relu(self.conv1(x), 0.2)
        out = self.head(x)
        return (out, feats) if return_features else out


class ToyScenes(Dataset):
    """8 random label maps (ids 0..3) and images, packed as catgen's data sets pack them."""

    metainfo = dict(classes=('unlabeled', *TARGET))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        label = torch.randint(0, len(TARGET) + 1, (SIZE, SIZE), generator=g)
        img = torch.randint(0, 256, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
        return dict(inputs=dict(img=img, label=label),
                    data_samples=SISDataSample(metainfo=dict(sample_idx=i)))


def toy_synth(n_target, transfer=None, generator=None):
    return dict(type='OASISSynthesizer', ema_momentum=0.5, labelmix_weight=1.0,
                data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n_target),
                generator=generator or dict(type='ToyGenerator'),
                discriminator=dict(type='ToyDiscriminator'), transfer=transfer)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    torch.manual_seed(1)
    model = MODELS.build(toy_synth(len(SOURCE) + 1))
    torch.save({'meta': {'dataset_meta': {'classes': ['unlabeled'] + SOURCE}},
                'state_dict': model.state_dict()}, root / 'source.pth')
    values = np.full((len(TARGET), len(SOURCE)), 0.1)
    np.fill_diagonal(values, 0.7)
    AffinityMatrix(values / values.sum(1, keepdims=True), TARGET, SOURCE).save(root / 'aff')
    return dict(ckpt=str(root / 'source.pth'), affinity=str(root / 'aff.json'))


def strategy_cfg(kind, source):
    ckpt = source['ckpt']
    cat = dict(source_checkpoint=ckpt, affinity_file=source['affinity'], target_classes=TARGET,
               source_classes=SOURCE)
    wrapped = dict(type='AffinityInputGenerator',
                   generator=dict(type='ToyGenerator', num_classes=len(SOURCE) + 1))
    return {
        'Scratch': (dict(type='Scratch'), None),
        'FinetuneAll': (dict(type='FinetuneAll', source_checkpoint=ckpt), None),
        'FreezeD': (dict(type='FreezeD', source_checkpoint=ckpt, num_frozen_blocks=1), None),
        'BSA': (dict(type='BSA', source_checkpoint=ckpt, num_latents=8),
                dict(type='ToyGenerator', norm_affine=True)),
        'EWC': (dict(type='EWC', source_checkpoint=ckpt, num_fisher_samples=2,
                     fisher_batch_size=2), None),
        # the source generator reads the target maps through the affinity (label spaces differ)
        'CDC': (dict(type='CDC', **cat), None),
        'DCL': (dict(type='DCL', **cat), None),
        'CAT': (dict(type='CAT', stage1_iters=1, **cat), wrapped),
        'CATTrainingFree': (dict(type='CATTrainingFree', **cat), wrapped),
    }[kind]


def _run(model_cfg, work_dir):
    return run_two_iterations(model_cfg, work_dir, ToyScenes(), 'toy')


@pytest.mark.parametrize('kind', ['Scratch', 'FinetuneAll', 'FreezeD', 'BSA', 'EWC', 'CDC',
                                  'DCL', 'CAT'])
def test_every_trained_strategy_runs_on_the_new_family(kind, source, tmp_path):
    transfer, generator = strategy_cfg(kind, source)
    torch.manual_seed(0)
    model, before = _run(toy_synth(len(TARGET) + 1, transfer, generator), tmp_path)
    after = model.generator.state_dict()
    moved = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert moved, f'{kind}: the generator did not train'
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    if kind == 'FreezeD':
        assert model.transfer.frozen_modules == ['conv0']
    if kind == 'BSA':
        assert model.transfer.norm_names == ['norm']
    if kind == 'CAT':
        assert (tmp_path / 'affinity.json').is_file()  # written by the TransferHook
        assert model.transfer._stage is False  # stage 1 (iteration 0), then stage 2


def test_training_free_cat_builds_on_the_new_family(source):
    transfer, generator = strategy_cfg('CATTrainingFree', source)
    model = MODELS.build(dict(toy_synth(len(TARGET) + 1, transfer, generator),
                              discriminator=None)).eval()
    seg = F.one_hot(torch.randint(0, 4, (2, SIZE, SIZE)), 4).permute(0, 3, 1, 2).float()
    out = model.synthesize(seg, sample_ids=[0, 1])
    assert out.shape == (2, 3, SIZE, SIZE) and not any(p.requires_grad for p in model.parameters())
    src = torch.load(source['ckpt'], weights_only=True)['state_dict']
    assert torch.equal(model.generator.generator.inp.weight, src['generator_ema.module.inp.weight'])


def test_a_network_without_the_protocol_is_refused_with_the_way_out(source):
    import torch.nn as nn

    @MODELS.register_module(force=True)
    class PlainGenerator(nn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.num_classes, self.z_dim = num_classes, 0
            self.conv = nn.Conv2d(num_classes, 3, 1)

        def forward(self, seg, z=None):
            return seg[:, :3]

    with pytest.raises(TypeError, match='Adding a generator family'):
        MODELS.build(toy_synth(4, dict(type='FinetuneAll', source_checkpoint=source['ckpt']),
                               dict(type='PlainGenerator')))
