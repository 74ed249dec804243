"""FinetuneAll: every weight from the source except the class channels of the class slices."""
import pytest
import torch

from catgen.registry import MODELS
from catgen.transfer.finetune_all import FinetuneAll  # noqa: F401 (registers)

SIZE = 32


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


def class_channels(network, n):
    """{state key: (dim, slice)} of the class channels of ``network``'s class slices."""
    out = {}
    for cs in network.class_slices():
        dim = 1 if cs.kind == 'input' else 0
        out[f'{cs.module}.weight'] = (dim, cs.index(n))
        if cs.kind == 'output':
            out[f'{cs.module}.bias'] = (0, cs.index(n))
    return out


@pytest.mark.parametrize('n_target', [4, 6])
def test_copies_weights_and_restarts_the_class_channels(source, n_target):
    src, ckpt = source
    torch.manual_seed(0)
    fresh = MODELS.build(oasis_cfg(n_target))
    torch.manual_seed(0)
    model = MODELS.build(oasis_cfg(n_target, dict(type='FinetuneAll', source_checkpoint=ckpt)))
    parts = dict(generator=src.generator_ema.module.state_dict(),
                 discriminator=src.discriminator.state_dict())
    for part, src_state in parts.items():
        fresh_state = getattr(fresh, part).state_dict()
        classes = class_channels(getattr(model, part), n_target)
        for k, v in getattr(model, part).state_dict().items():
            if k not in classes:
                assert torch.equal(v, src_state[k]), (part, k)
                continue
            # fresh in the class channels even with equal class counts (reinit_class_layers)
            dim, idx = classes[k]
            own = [slice(None)] * v.dim()
            own[dim] = idx
            assert torch.equal(v[tuple(own)], fresh_state[k][tuple(own)]), (part, k)
            # outside them (the noise channels of G's inputs, D's "fake" row) from the source
            n_src = src_state[k].shape[dim] - (v.shape[dim] - n_target)
            keep = torch.ones(v.shape[dim], dtype=torch.bool)
            keep[idx] = False
            src_keep = torch.ones(src_state[k].shape[dim], dtype=torch.bool)
            src_keep[idx.start:idx.start + n_src] = False
            assert torch.equal(v.index_select(dim, keep.nonzero()[:, 0]),
                               src_state[k].index_select(dim, src_keep.nonzero()[:, 0])), (part, k)
    assert 'fc' in model.transfer.reinitialised['generator']
    assert 'body.0.norm_0.mlp_shared.0' in model.transfer.reinitialised['generator']
    assert model.transfer.reinitialised['discriminator'] == ['layer_up_last']
    assert all(p.requires_grad for part in (model.generator, model.discriminator)
               for p in part.parameters())


def test_reinit_false_copies_class_layers_when_shapes_match(source):
    _, ckpt = source
    model = MODELS.build(oasis_cfg(6, dict(type='FinetuneAll', source_checkpoint=ckpt,
                                           reinit_class_layers=False)))
    src = source[0]
    assert torch.equal(model.generator.fc.weight, src.generator_ema.module.fc.weight)
    assert torch.equal(model.discriminator.layer_up_last.weight,
                       src.discriminator.layer_up_last.weight)


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
