"""pSp's GradualStyleEncoder: official parameter counts, shapes, the coarse/middle/fine split."""
import pytest
import torch

from catgen.models.encoders import PSPEncoder
from catgen.models.layers import IRSEBlock


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('classes, styles, expected', [
    (151, 14, 209_535_936),   # Fewshot-SMIS ADE20K encoder (methods.md)
    (19, 18, 267_145_920),    # CelebAMask-HQ, 1024 px prior
])
def test_official_parameter_counts(classes, styles, expected):
    with torch.device('meta'):
        enc = PSPEncoder(classes, styles, 512, 256)
    assert count(enc) == expected


def test_shapes_and_levels():
    torch.manual_seed(0)
    enc = PSPEncoder(5, 10, style_dim=16, input_size=32, widths=(8, 8, 16, 16),
                     units=(1, 1, 1, 1)).eval()
    out = enc(torch.randn(2, 5, 32, 32))
    assert out.shape == (2, 10, 16)
    # heads read 1/16, 1/8 and 1/4 of the input: 2, 4 and 8 px -> 1, 2 and 3 stride-2 convs
    assert [PSPEncoder.style_level(i) for i in range(10)] == [0] * 3 + [1] * 4 + [2] * 3
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in h.convs) for h in enc.styles]
    assert convs == [1] * 3 + [2] * 4 + [3] * 3
    # every style depends on the input and gets gradients
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)


def test_style_heads_differ_by_level():
    torch.manual_seed(0)
    enc = PSPEncoder(3, 8, style_dim=8, input_size=32, widths=(8, 8, 8, 8),
                     units=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 3, 32, 32)
    y = x.clone()
    y[..., :2, :2] += 5  # a local change reaches every level
    assert not torch.allclose(enc(x), enc(y))


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='power of 2'):
        PSPEncoder(3, 8, input_size=48)
    with pytest.raises(ValueError, match='4 stage widths'):
        PSPEncoder(3, 8, widths=(8, 8, 8))
    enc = PSPEncoder(3, 8, style_dim=8, input_size=32, widths=(8, 8, 8, 8), units=(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r'Tensor\[B, 3, 32, 32\]'):
        enc(torch.randn(1, 4, 32, 32))


def test_ir_se_block_shortcut_and_stride():
    blk = IRSEBlock(8, 16, stride=2)
    assert isinstance(blk.shortcut, torch.nn.Sequential)  # 1x1 conv + BN when widths differ
    assert blk(torch.randn(2, 8, 8, 8)).shape == (2, 16, 4, 4)
    same = IRSEBlock(8, 8, stride=1)
    assert isinstance(same.shortcut, torch.nn.MaxPool2d)
    x = torch.randn(1, 8, 4, 4)
    torch.nn.init.zeros_(same.residual[4].weight)  # residual BN off -> identity
    torch.nn.init.zeros_(same.residual[4].bias)
    assert torch.allclose(same(x), x)
