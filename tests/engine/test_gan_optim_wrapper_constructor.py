import pytest
import torch
import torch.nn as nn
from mmengine.optim import OptimWrapperDict

from catgen.engine.optimizers import AutocastOptimWrapper, GANOptimWrapperConstructor


class TwoParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = nn.Linear(3, 3)
        self.discriminator = nn.Linear(3, 1)


CFG = dict(generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
           discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999))))


def test_one_wrapper_per_part_with_own_lr_and_params():
    model = TwoParts()
    wrappers = GANOptimWrapperConstructor(CFG)(model)
    assert isinstance(wrappers, OptimWrapperDict)
    g, d = wrappers['generator'], wrappers['discriminator']
    assert g.optimizer.param_groups[0]['lr'] == 1e-4 and d.optimizer.param_groups[0]['lr'] == 4e-4
    g_params = {id(p) for p in g.optimizer.param_groups[0]['params']}
    assert g_params == {id(p) for p in model.generator.parameters()}


def test_frozen_parameters_left_out_and_optim_params_respected():
    model = TwoParts()
    model.discriminator.bias.requires_grad_(False)
    extra = nn.Parameter(torch.zeros(4))
    model.optim_params = lambda part: (list(getattr(model, part).parameters())
                                       + ([extra] if part == 'generator' else []))
    wrappers = GANOptimWrapperConstructor(CFG)(model)
    d_params = wrappers['discriminator'].optimizer.param_groups[0]['params']
    assert len(d_params) == 1 and d_params[0] is model.discriminator.weight
    assert any(p is extra for p in wrappers['generator'].optimizer.param_groups[0]['params'])


def test_parameter_groups_keep_their_lr_and_drop_frozen_members():
    """optim_params may return parameter groups (BSA: its own lr for scales/shifts/latents)."""
    model = TwoParts()
    model.generator.bias.requires_grad_(False)
    extra, frozen = nn.Parameter(torch.zeros(4)), nn.Parameter(torch.zeros(2))
    frozen.requires_grad_(False)
    model.optim_params = lambda part: (
        [dict(params=[extra], lr=0.03), dict(params=list(model.generator.parameters())),
         dict(params=[frozen], lr=1.0)]
        if part == 'generator' else list(model.discriminator.parameters()))
    groups = GANOptimWrapperConstructor(CFG)(model)['generator'].optimizer.param_groups
    assert len(groups) == 2  # the all-frozen group is left out
    assert groups[0]['lr'] == 0.03 and groups[0]['params'] == [extra]
    assert groups[1]['lr'] == 1e-4 and groups[1]['params'] == [model.generator.weight]
    model.optim_params = lambda part: [dict(lr=0.1)]
    with pytest.raises(ValueError, match="needs a 'params' entry"):
        GANOptimWrapperConstructor(CFG)(model)


def test_errors_are_explicit():
    with pytest.raises(ValueError, match='no such part'):
        GANOptimWrapperConstructor(dict(encoder=CFG['generator']))(TwoParts())
    with pytest.raises(ValueError, match='paramwise_cfg'):
        GANOptimWrapperConstructor(CFG, paramwise_cfg=dict(norm_decay_mult=0))
    model = TwoParts()
    for p in model.discriminator.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameters'):
        GANOptimWrapperConstructor(CFG)(model)


def test_autocast_wrapper_bf16_on_cpu_updates_params():
    model = nn.Linear(8, 8)
    wrapper = AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert wrapper.dtype == torch.bfloat16 and wrapper.scaler is None
    before = model.weight.detach().clone()
    with wrapper.optim_context(model):
        out = model(torch.randn(4, 8))
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).mean()
    wrapper.update_params(loss)
    assert not torch.equal(before, model.weight)
    assert model.weight.dtype == torch.float32
    state = wrapper.state_dict()
    wrapper.load_state_dict(state)
    with pytest.raises(ValueError, match='bfloat16'):
        AutocastOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                             dtype='float16', device_type='cpu')
