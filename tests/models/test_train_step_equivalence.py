"""Speed changes that must not change the training maths (issue 18).

The generators' SPADE blocks and the OASIS discriminator's second conv apply LeakyReLU in place
(fewer temporaries per step). One training step of a tiny OASIS and a tiny SPADE model with the
in-place activations, and with every activation switched back to out of place, must give the
same losses, the same gradients and the same updated weights, bit for bit.
"""
import copy

import pytest
import torch
import torch.nn as nn

from catgen.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from catgen.utils.setup_env import register_all_modules

register_all_modules()

NC = 4
OASIS = dict(
    type='OASISSynthesizer',
    data_preprocessor=dict(type='SISDataPreprocessor', num_classes=NC),
    generator=dict(type='OASISGenerator', num_classes=NC, z_dim=4, base_channels=2,
                   channel_multipliers=(4, 2, 1), crop_size=32, spade_hidden=8),
    discriminator=dict(type='OASISDiscriminator', num_classes=NC, base_channels=4,
                       channel_multipliers=(1, 2)),
    ema_momentum=0.5)
SPADE = dict(
    type='SPADESynthesizer',
    data_preprocessor=dict(type='SISDataPreprocessor', num_classes=NC),
    generator=dict(type='SPADEGenerator', num_classes=NC, base_channels=2, crop_size=32,
                   num_upsampling_layers='normal', spade_hidden=8),
    discriminator=dict(type='MultiScalePatchGANDiscriminator', num_classes=NC, base_channels=4,
                       num_layers=2),
    ema_momentum=0.5)


def one_step(model):
    """Losses, gradients (name -> Tensor) and the state dict after one train_step."""
    optim = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='GANOptimWrapperConstructor', optim_wrapper_cfg=dict(
            generator=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.0, 0.999))),
            discriminator=dict(optimizer=dict(type='Adam', lr=4e-3, betas=(0.0, 0.999))))))(model)
    g = torch.Generator().manual_seed(1)
    data = dict(inputs=dict(
        img=list(torch.randint(0, 256, (2, 3, 32, 32), generator=g, dtype=torch.uint8)),
        label=list(torch.randint(0, NC, (2, 32, 32), generator=g))))
    grads = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_hook(lambda grad, name=name: grads.__setitem__(name, grad.clone()))
    torch.manual_seed(3)
    logs = model.train_step(data, optim)
    return logs, grads, model.state_dict()


@pytest.mark.parametrize('cfg', [OASIS, SPADE], ids=['oasis', 'spade'])
def test_in_place_activations_change_nothing(cfg):
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg))
    reference = copy.deepcopy(model)
    in_place = [m for m in model.modules() if isinstance(m, nn.LeakyReLU) and m.inplace]
    assert in_place, 'the speed change is gone: no in-place LeakyReLU left'
    for m in reference.modules():
        if isinstance(m, nn.LeakyReLU):
            m.inplace = False
    logs, grads, state = one_step(model)
    ref_logs, ref_grads, ref_state = one_step(reference)
    assert {k: float(v) for k, v in logs.items()} == {k: float(v) for k, v in ref_logs.items()}
    assert grads.keys() == ref_grads.keys() and len(grads) > 20
    for name in grads:
        assert torch.equal(grads[name], ref_grads[name]), name
    for name in state:
        assert torch.equal(state[name], ref_state[name]), name
