import math

import pytest
import torch

from catgen.models.losses.gan_loss import GANLoss
from catgen.registry import MODELS

X = torch.tensor([[-2.0, 0.0], [0.5, 3.0]])  # hand-made logits


def test_hinge_values():
    loss = GANLoss('hinge')
    # D real: mean(relu(1 - x)) = (3 + 1 + 0.5 + 0) / 4
    assert loss(X, True).item() == pytest.approx(1.125)
    # D fake: mean(relu(1 + x)) = (0 + 1 + 1.5 + 4) / 4
    assert loss(X, False).item() == pytest.approx(1.625)
    # G: -mean(x)
    assert loss(X, True, for_discriminator=False).item() == pytest.approx(-0.375)
    with pytest.raises(ValueError, match='aim for real'):
        loss(X, False, for_discriminator=False)


def test_hinge_gradient_only_inside_the_margin():
    x = X.clone().requires_grad_(True)
    GANLoss('hinge')(x, True).backward()
    # d/dx mean(relu(1 - x)) = -1/4 where x < 1, else 0
    assert torch.equal(x.grad, torch.tensor([[-0.25, -0.25], [-0.25, 0.0]]))


def test_ls_vanilla_and_wgan_values():
    assert GANLoss('ls')(X, True).item() == pytest.approx((9 + 1 + 0.25 + 4) / 4)
    assert GANLoss('ls')(X, False).item() == pytest.approx((4 + 0 + 0.25 + 9) / 4)
    zeros = torch.zeros(3, 1, 2, 2)
    assert GANLoss('vanilla')(zeros, True).item() == pytest.approx(math.log(2))
    assert GANLoss('original')(zeros, False).item() == pytest.approx(math.log(2))
    assert GANLoss('wgan')(X, True).item() == pytest.approx(-0.375)
    assert GANLoss('wgan')(X, False).item() == pytest.approx(0.375)


def test_multiscale_uses_last_tensor_and_averages_scales():
    loss = GANLoss('hinge', weight=2.0)
    feat = torch.full((2, 4, 3, 3), 100.0)  # intermediate features must be ignored
    scale0 = [feat, X]                     # D real loss 1.125
    scale1 = [feat, torch.full((2, 1, 2, 2), -1.0)]  # D real loss 2
    assert loss([scale0, scale1], True).item() == pytest.approx(2.0 * (1.125 + 2.0) / 2)
    # a list of tensors is a list of scales
    assert loss([X, X], False).item() == pytest.approx(2.0 * 1.625)
    assert loss([scale0], True, for_discriminator=False).item() == pytest.approx(2.0 * -0.375)


def test_errors_and_registry():
    with pytest.raises(ValueError, match='mode'):
        GANLoss('relativistic')
    with pytest.raises(ValueError, match='empty'):
        GANLoss()([], True)
    loss = MODELS.build(dict(type='GANLoss', mode='hinge'))
    assert isinstance(loss, GANLoss) and loss.mode == 'hinge'
