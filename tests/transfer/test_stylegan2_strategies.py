"""Every trained transfer strategy adapts an unconditional StyleGAN2 through the model protocol
(the few-shot adaptation setting of CDC and DCL), through MMEngine's Runner."""
import os.path as osp
import sys

import pytest
import torch
from torch.utils.data import Dataset

from catgen.registry import MODELS
from catgen.structures import SISDataSample

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from strategy_runner import run_two_iterations  # noqa: E402

SIZE = 16
G = dict(type='StyleGAN2Generator', size=SIZE, style_dim=8, n_mlp=2, max_channels=8)
D = dict(type='StyleGAN2Discriminator', size=SIZE, max_channels=8)


class Shots(Dataset):
    """8 random target images, packed as catgen's data sets pack them (no label maps)."""

    metainfo = dict(classes=())

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(100 + i)
        img = torch.randint(0, 256, (3, SIZE, SIZE), generator=g, dtype=torch.uint8)
        return dict(inputs=dict(img=img), data_samples=SISDataSample(metainfo=dict(sample_idx=i)))


def synth_cfg(transfer=None, generator=G, **kw):
    return dict(type='StyleGAN2Synthesizer', generator=generator, discriminator=D,
                r1_interval=2, path_length_interval=2, transfer=transfer, **kw)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    from mmengine.registry import init_default_scope
    init_default_scope('catgen')
    torch.manual_seed(1)
    model = MODELS.build(synth_cfg())
    path = tmp_path_factory.mktemp('sg2') / 'source.pth'
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, path)
    return str(path)


def strategy(kind, ckpt):
    return {
        'FinetuneAll': (dict(type='FinetuneAll', source_checkpoint=ckpt), G),
        'FreezeD': (dict(type='FreezeD', source_checkpoint=ckpt, num_frozen_blocks=2), G),
        'BSA': (dict(type='BSA', source_checkpoint=ckpt, num_latents=8, perceptual=None),
                dict(G, scale_shift=True)),
        'EWC': (dict(type='EWC', source_checkpoint=ckpt, num_fisher_samples=2,
                     fisher_batch_size=2), G),
        'CDC': (dict(type='CDC', source_checkpoint=ckpt, patch_loss='replace',
                     anchor_interval=2), G),
        'DCL': (dict(type='DCL', source_checkpoint=ckpt, d_layers=['convs.2']), G),
    }[kind]


def _run(model_cfg, work_dir):
    return run_two_iterations(model_cfg, work_dir, Shots(), 'sg2')


@pytest.mark.parametrize('kind', ['FinetuneAll', 'FreezeD', 'BSA', 'EWC', 'CDC', 'DCL'])
def test_every_trained_strategy_adapts_stylegan2(kind, source, tmp_path):
    transfer, generator = strategy(kind, source)
    torch.manual_seed(0)
    model, before = _run(synth_cfg(transfer, generator), tmp_path)
    src = torch.load(source, weights_only=True)['state_dict']
    after = model.generator.state_dict()
    moved = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
    assert moved, f'{kind}: the generator did not train'
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    # loaded from the source (the EMA generator), not left at the fresh initialisation
    assert torch.equal(before['style.1.weight'], src['generator_ema.module.style.1.weight'])
    if kind == 'FreezeD':
        assert model.transfer.frozen_modules == ['convs.0', 'convs.1']
        assert torch.equal(model.discriminator.convs[0][0].weight,
                           src['discriminator.convs.0.0.weight'])
    if kind == 'BSA':
        assert len(model.transfer.norm_names) == len(model.generator.feature_levels())
        frozen = [k for k in moved if 'scale_shift' not in k]
        assert frozen == []  # only the scales/shifts move (the latents live in the strategy)
    if kind == 'CDC':
        # the first level nearest 1/8 of the image (2 px): convs.2 (4x4, before the stddev)
        assert model.transfer.patch_level_name == 'convs.2'
    if kind == 'EWC':
        assert model.transfer.fisher is not None
