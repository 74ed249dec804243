"""FreezeD: the discriminator's first k layers stay bit-identical while everything else moves."""
import os
import sys

import pytest
import torch

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.structures import SISDataSample
from catgen.transfer.freeze_d import (FreezeD, class_slice_holders,  # noqa: F401 (registers)
                                      frozen_layer_names)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import SIZE, synth_cfg  # noqa: E402


def oasis_cfg(n, transfer=None):
    return dict(synth_cfg(n, transfer), ema_momentum=0.5)


def spade_cfg(n, transfer=None):
    return dict(
        type='SPADESynthesizer', data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n),
        ema_momentum=None, transfer=transfer,
        generator=dict(type='SPADEGenerator', num_classes=n, base_channels=2, crop_size=SIZE),
        discriminator=dict(type='MultiScalePatchGANDiscriminator', num_classes=n, num_layers=2,
                           base_channels=4))


def batch(n, b=2):
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, n, (b, SIZE, SIZE), generator=g)
    img = torch.randint(0, 256, (b, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    return dict(inputs=dict(img=list(img), label=list(label)),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(b)])


def optim(model):
    return GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-2, betas=(0.0, 0.999))),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-2, betas=(0.0, 0.999)))))(model)


def source_ckpt(cfg, path):
    torch.manual_seed(1)
    torch.save({'meta': {}, 'state_dict': MODELS.build(cfg).state_dict()}, path)
    return str(path)


def train_and_compare(model, steps=2):
    d0 = {k: v.detach().clone() for k, v in model.discriminator.named_parameters()}
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    wrapper = optim(model)
    for _ in range(steps):
        model.train_step(batch(4), wrapper)
    moved = {k for k, p in model.discriminator.named_parameters() if not torch.equal(p, d0[k])}
    g_moved = any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    return moved, set(d0), g_moved, wrapper


def test_oasis_frozen_encoder_blocks_stay_bit_identical(tmp_path):
    ckpt = source_ckpt(oasis_cfg(6), tmp_path / 'src.pth')
    torch.manual_seed(0)
    model = MODELS.build(oasis_cfg(4, dict(type='FreezeD', source_checkpoint=ckpt,
                                           num_frozen_blocks=2)))
    assert model.transfer.frozen_modules == ['body_down.0', 'body_down.1']
    assert model.transfer.kept_trainable == {}  # OASIS's D does not read the label map
    moved, names, g_moved, wrapper = train_and_compare(model)
    frozen = {k for k in names if k.startswith(('body_down.0.', 'body_down.1.'))}
    assert frozen and not moved & frozen  # bit-identical
    assert moved == names - frozen  # every other D parameter moves
    assert g_moved
    in_optim = {id(p) for g in wrapper['discriminator'].optimizer.param_groups for p in g['params']}
    params = dict(model.discriminator.named_parameters())
    assert not any(id(params[k]) in in_optim for k in frozen)


def test_finetune_all_moves_those_blocks(tmp_path):
    ckpt = source_ckpt(oasis_cfg(6), tmp_path / 'src.pth')
    torch.manual_seed(0)
    model = MODELS.build(oasis_cfg(4, dict(type='FinetuneAll', source_checkpoint=ckpt)))
    moved, names, _, _ = train_and_compare(model)
    assert any(k.startswith('body_down.0.') for k in moved)


def d_optim_ids(wrapper):
    return {id(p) for g in wrapper['discriminator'].optimizer.param_groups for p in g['params']}


def test_patchgan_label_reading_layer_stays_trainable_the_rest_is_frozen(tmp_path):
    ckpt = source_ckpt(spade_cfg(6), tmp_path / 'spade.pth')
    torch.manual_seed(0)
    model = MODELS.build(spade_cfg(4, dict(type='FreezeD', source_checkpoint=ckpt,
                                           num_frozen_blocks=2)))
    # level 0 (model0 of every scale) reads [label map, image]: its label channels restarted
    assert model.transfer.kept_trainable == {
        'discriminator_0.model0': ['discriminator_0.model0.0'],
        'discriminator_1.model0': ['discriminator_1.model0.0']}
    assert model.transfer.frozen_modules == ['discriminator_0.model1', 'discriminator_1.model1']
    params = dict(model.discriminator.named_parameters())
    label_layers = {k for k in params if '.model0.' in k}
    frozen = {k for k in params if '.model1.' in k}
    assert label_layers and all(params[k].requires_grad for k in label_layers)
    assert frozen and not any(params[k].requires_grad for k in frozen)
    moved, names, _, wrapper = train_and_compare(model, steps=1)  # one D step (then G's)
    in_optim = d_optim_ids(wrapper)
    assert all(id(params[k]) in in_optim for k in label_layers)
    assert not any(id(params[k]) in in_optim for k in frozen)
    assert not moved & frozen  # bit-identical after the D step
    assert label_layers <= moved  # the label-reading layer trains
    assert any('.model2.' in k for k in moved)


def test_copied_label_channels_are_frozen_as_published(tmp_path):
    # same class count and reinit_class_layers=False: the label channels are the source's
    ckpt = source_ckpt(spade_cfg(4), tmp_path / 'spade.pth')
    model = MODELS.build(spade_cfg(4, dict(type='FreezeD', source_checkpoint=ckpt,
                                           num_frozen_blocks=1, reinit_class_layers=False)))
    assert model.transfer.kept_trainable == {}
    assert model.transfer.frozen_modules == ['discriminator_0.model0', 'discriminator_1.model0']


def test_class_slice_holders_on_a_single_patchgan():
    d = MODELS.build(dict(type='PatchGANDiscriminator', num_classes=4, num_layers=2,
                          base_channels=4))
    names = frozen_layer_names(d, 2)
    assert names == ['model0', 'model1']
    assert class_slice_holders(d, names) == {'model0': ['model0.0']}
    assert class_slice_holders(d, names, restarted=['model0.0']) == {'model0': ['model0.0']}
    assert class_slice_holders(d, names, restarted=[]) == {}


def test_too_many_blocks_is_an_error(tmp_path):
    ckpt = source_ckpt(oasis_cfg(6), tmp_path / 'src.pth')
    with pytest.raises(ValueError, match='has 3 input levels'):
        MODELS.build(oasis_cfg(4, dict(type='FreezeD', source_checkpoint=ckpt,
                                       num_frozen_blocks=4)))
