import pytest
import torch

from catgen.models.losses.feature_matching_loss import FeatureMatchingLoss
from catgen.registry import MODELS


def scale(*values, logits=0.0):
    """One scale: feature maps filled with ``values``, then logits."""
    return [torch.full((2, 3, 4, 4), float(v)) for v in values] + [torch.full((2, 1, 3, 3), logits)]


def test_zero_for_identical_features():
    feats = [[torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4), torch.randn(2, 1, 3, 3)]] * 2
    assert FeatureMatchingLoss()(feats, feats).item() == 0.0


def test_logits_are_excluded():
    fake = [scale(1, 2, logits=5.0)]
    real = [scale(1, 2, logits=-5.0)]
    assert FeatureMatchingLoss()(fake, real).item() == 0.0


def test_hand_values_sum_layers_average_scales():
    loss = FeatureMatchingLoss()  # weight 10 (official lambda_feat)
    assert loss.weight == 10.0
    # one scale: |1 - 0| + |2 - 0| summed over layers
    assert loss([scale(1, 2)], [scale(0, 0)]).item() == pytest.approx(30.0)
    # two scales: (3 + 1) / 2 scales * 10
    fake, real = [scale(1, 2), scale(0, 1)], [scale(0, 0), scale(0, 0)]
    assert loss(fake, real).item() == pytest.approx(20.0)
    # a single discriminator's feature list counts as one scale
    assert FeatureMatchingLoss(weight=1.0)(scale(1, 2), scale(0, 0)).item() == pytest.approx(3.0)


def test_real_features_are_detached():
    fake = [[torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 1, 2, 2)]]
    real = [[torch.randn(2, 3, 4, 4, requires_grad=True), torch.randn(2, 1, 2, 2)]]
    FeatureMatchingLoss()(fake, real).backward()
    assert fake[0][0].grad is not None and fake[0][0].grad.abs().sum() > 0
    assert real[0][0].grad is None


def test_mismatch_errors_and_registry():
    loss = MODELS.build(dict(type='FeatureMatchingLoss', weight=1.0))
    with pytest.raises(ValueError, match='scales'):
        loss([scale(1), scale(1)], [scale(1)])
    with pytest.raises(ValueError, match='outputs'):
        loss([scale(1, 2)], [scale(1)])
