"""pSp's GradualStyleEncoder (Richardson et al., CVPR 2021): an image or label map -> W+ offsets.

As the pSp code that Fewshot-SMIS trains (``GradualStyleEncoder``, ``IR-SE50`` body):

- stem: ``conv3x3 (no bias) -> BN -> PReLU`` at full resolution, ``widths[0]`` channels;
- body: four stages of IR-SE units (``units`` per stage, IR-SE50: 3, 4, 14, 3; widths 64, 128,
  256, 512), the first unit of each stage halving the resolution: the outputs of stages 2, 3, 4
  are ``c1`` (1/4 size), ``c2`` (1/8), ``c3`` (1/16);
- feature pyramid: ``p3 = c3``, ``p2 = up(p3) + lat1(c2)``, ``p1 = up(p2) + lat2(c1)`` (1x1
  lateral convs to ``widths[-1]`` channels, bilinear upsampling with ``align_corners=True``);
- map-to-style heads (``GradualStyleBlock``): style ``i < 3`` reads ``p3``, ``3 <= i < 7``
  reads ``p2``, the rest ``p1`` (the coarse, middle and fine styles); each head is a chain of
  stride-2 ``conv3x3 + LeakyReLU(0.01)`` down to 1x1 and an equalised linear layer.

The output is the offset of every layer's w from the prior's average latent (the synthesizer
adds ``latent_avg``, pSp's ``start_from_latent_avg``). At the official setting (151 input
classes, 14 styles of 512, IR-SE50, 256 px) it has 209,535,936 parameters; with 19 classes and
18 styles 267,145,920 (Fewshot-SMIS's ADE20K and CelebAMask-HQ encoders; tested on ``meta``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.layers.equalized import EqualLinear
from catgen.models.layers.ir_se_block import IRSEBlock
from catgen.registry import MODELS

COARSE_STYLES = 3  # styles 0..2 read the 1/16 level (pSp's coarse_ind)
MIDDLE_STYLES = 7  # styles 3..6 read the 1/8 level (pSp's middle_ind); the rest the 1/4 level


class GradualStyleBlock(nn.Module):
    """Stride-2 ``conv3x3 + LeakyReLU`` down from ``spatial`` x ``spatial`` to 1x1, then an
    equalised linear layer.

    Args:
        in_channels: input channels.
        out_channels: the style's width.
        spatial: input resolution (a power of 2 >= 2).
    """

    def __init__(self, in_channels, out_channels, spatial):
        super().__init__()
        pools = int(round(math.log2(spatial)))
        if spatial < 2 or 2 ** pools != spatial:
            raise ValueError(f'GradualStyleBlock needs a power-of-2 input size >= 2, got {spatial}')
        layers = [nn.Conv2d(in_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(pools - 1):
            layers += [nn.Conv2d(out_channels, out_channels, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_channels, out_channels)
        self.out_channels = out_channels

    def forward(self, x):
        """x: Tensor[B, in_channels, spatial, spatial] -> Tensor[B, out_channels]."""
        return self.linear(self.convs(x).view(-1, self.out_channels))


@MODELS.register_module()
class PSPEncoder(nn.Module):
    """pSp's GradualStyleEncoder (module docstring).

    Args:
        in_channels: input channels (Fewshot-SMIS: the one-hot label map, one per class).
        num_styles: styles out (the generator's ``n_latent``: 14 at 256 px, 18 at 1024 px).
        style_dim: width of a style (the generator's ``style_dim``).
        input_size: the input resolution (a power of 2 >= 32: the heads' sizes follow from it).
        widths: channels of the four body stages (IR-SE50: 64, 128, 256, 512); the pyramid
            has ``widths[-1]`` channels.
        units: IR-SE units per stage (IR-SE50: 3, 4, 14, 3).
        se_reduction: squeeze-excite reduction (16).
    """

    def __init__(self, in_channels, num_styles, style_dim=512, input_size=256,
                 widths=(64, 128, 256, 512), units=(3, 4, 14, 3), se_reduction=16):
        super().__init__()
        if len(widths) != 4 or len(units) != 4 or min(units) < 1:
            raise ValueError(f'PSPEncoder needs 4 stage widths and 4 unit counts >= 1, got '
                             f'widths={widths}, units={units}')
        log = int(round(math.log2(input_size)))
        if input_size < 32 or 2 ** log != input_size:
            raise ValueError(f'PSPEncoder input_size must be a power of 2 >= 32, got {input_size}')
        self.in_channels = int(in_channels)
        self.num_styles = int(num_styles)
        self.style_dim = int(style_dim)
        self.input_size = int(input_size)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
        self.stages = nn.ModuleList()
        in_ch = widths[0]
        for width, count in zip(widths, units):
            blocks = [IRSEBlock(in_ch, width, 2, se_reduction)]
            blocks += [IRSEBlock(width, width, 1, se_reduction) for _ in range(count - 1)]
            self.stages.append(nn.Sequential(*blocks))
            in_ch = width
        top = widths[-1]
        self.lateral1 = nn.Conv2d(widths[2], top, 1)
        self.lateral2 = nn.Conv2d(widths[1], top, 1)
        sizes = (input_size // 16, input_size // 8, input_size // 4)
        self.styles = nn.ModuleList(
            GradualStyleBlock(top, style_dim, sizes[self.style_level(i)])
            for i in range(num_styles))

    @staticmethod
    def style_level(i):
        """The pyramid level style ``i`` reads: 0 (1/16: coarse), 1 (1/8: middle), 2 (1/4)."""
        return 0 if i < COARSE_STYLES else 1 if i < MIDDLE_STYLES else 2

    def forward(self, x):
        """x: Tensor[B, in_channels, input_size, input_size] -> Tensor[B, num_styles, style_dim]
        (offsets from the average latent)."""
        if x.shape[1] != self.in_channels or tuple(x.shape[2:]) != (self.input_size,) * 2:
            raise ValueError(f'PSPEncoder expects Tensor[B, {self.in_channels}, '
                             f'{self.input_size}, {self.input_size}], got {tuple(x.shape)}')
        x = self.stem(x)
        c = []
        for stage in self.stages:
            x = stage(x)
            c.append(x)
        c1, c2, c3 = c[1], c[2], c[3]
        p3 = c3
        p2 = _upsample_add(p3, self.lateral1(c2))
        p1 = _upsample_add(p2, self.lateral2(c1))
        levels = (p3, p2, p1)
        return torch.stack([head(levels[self.style_level(i)])
                            for i, head in enumerate(self.styles)], dim=1)


def _upsample_add(x, y):
    """``x`` upsampled (bilinear, align_corners=True) to ``y``'s size, plus ``y``."""
    return F.interpolate(x, size=y.shape[2:], mode='bilinear', align_corners=True) + y
