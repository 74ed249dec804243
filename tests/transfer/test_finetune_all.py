"""FinetuneAll: every shape-compatible weight from the source, class-dependent layers fresh."""
import re

import pytest
import torch

from catgen.registry import MODELS
from catgen.transfer.finetune_all import FinetuneAll  # noqa: F401 (registers)

SIZE = 32
CLASS_KEY = re.compile(r'^(fc|.*mlp_shared\.0|layer_up_last|.*model0\.0)\.')


def oasis_cfg(n, transfer=None, width=4):
    return dict(
        type='OASISSynthesizer', data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n),
        generator=dict(type='OASISGenerator', num_classes=n, z_dim=4, base_channels=width,
                       channel_multipliers=(4, 2, 1), crop_size=SIZE, spade_hidden=8),
        discriminator=dict(type='OASISDiscriminator', num_classes=n, base_channels=2,
                           channel_multipliers=(1, 2, 2)),
        ema_momentum=0.5, transfer=transfer)


def spade_cfg(n, transfer=None):
    return dict(
        type='SPADESynthesizer', data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n),
        ema_momentum=None, transfer=transfer,
        generator=dict(type='SPADEGenerator', num_classes=n, base_channels=2, crop_size=64),
        discriminator=dict(type='MultiScalePatchGANDiscriminator', num_classes=n, num_layers=2,
                           base_channels=4))


def save_source(model, path):
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    torch.manual_seed(1)
    model = MODELS.build(oasis_cfg(6))
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(0.01)
    model.generator_ema.update_parameters(model.generator)
    return model, save_source(model, tmp_path_factory.mktemp('ft') / 'src.pth')


@pytest.mark.parametrize('n_target', [4, 6])
def test_copies_compatible_weights_and_reinitialises_class_layers(source, n_target):
    src, ckpt = source
    torch.manual_seed(0)
    fresh = MODELS.build(oasis_cfg(n_target))
    torch.manual_seed(0)
    model = MODELS.build(oasis_cfg(n_target, dict(type='FinetuneAll', source_checkpoint=ckpt)))
    parts = dict(generator=src.generator_ema.module.state_dict(),
                 discriminator=src.discriminator.state_dict())
    for part, src_state in parts.items():
        fresh_state = getattr(fresh, part).state_dict()
        for k, v in getattr(model, part).state_dict().items():
            if CLASS_KEY.match(k):  # fresh even with equal class counts (reinit_class_layers)
                assert torch.equal(v, fresh_state[k]), (part, k)
            else:
                assert torch.equal(v, src_state[k]), (part, k)
    assert 'fc' in model.transfer.reinitialised['generator']
    assert 'body.0.norm_0.mlp_shared.0' in model.transfer.reinitialised['generator']
    assert model.transfer.reinitialised['discriminator'] == ['layer_up_last']
    assert all(p.requires_grad for part in (model.generator, model.discriminator)
               for p in part.parameters())


def test_reinit_false_copies_class_layers_when_shapes_match(source):
    _, ckpt = source
    model = MODELS.build(oasis_cfg(6, dict(type='FinetuneAll', source_checkpoint=ckpt,
                                           reinit_class_layers=False)))
    assert model.transfer.reinitialised == {'generator': [], 'discriminator': []}


def test_other_architecture_is_an_error(source):
    _, ckpt = source
    with pytest.raises(ValueError, match='architectures differ'):
        MODELS.build(oasis_cfg(4, dict(type='FinetuneAll', source_checkpoint=ckpt), width=8))


def test_missing_source_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='no/src.pth'):
        MODELS.build(oasis_cfg(4, dict(type='FinetuneAll',
                                       source_checkpoint=str(tmp_path / 'no/src.pth'))))


def test_patchgan_input_conv_keeps_source_image_weights(tmp_path):
    torch.manual_seed(1)
    src = MODELS.build(spade_cfg(6))
    ckpt = save_source(src, tmp_path / 'spade.pth')
    torch.manual_seed(0)
    fresh = MODELS.build(spade_cfg(4))
    torch.manual_seed(0)
    model = MODELS.build(spade_cfg(4, dict(type='FinetuneAll', source_checkpoint=ckpt)))
    for scale in ('discriminator_0', 'discriminator_1'):
        w = getattr(model.discriminator, scale).model0[0].weight
        w_src = getattr(src.discriminator, scale).model0[0].weight
        w_fresh = getattr(fresh.discriminator, scale).model0[0].weight
        assert torch.equal(w[:, -3:], w_src[:, -3:])  # image channels from the source
        assert torch.equal(w[:, :4], w_fresh[:, :4])  # label channels fresh
        assert torch.equal(getattr(model.discriminator, scale).model1[0][0].weight_orig,
                           getattr(src.discriminator, scale).model1[0][0].weight_orig)
