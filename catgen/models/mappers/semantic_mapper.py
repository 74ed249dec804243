"""SemanticMapper: a user's mask (label map, scribbles, sketch) -> a proxy mask (SIS-UG).

The rearranger speaks the generator's own "classes" (the ``k`` proxy-mask clusters); a user
speaks semantic classes, scribbles or edges. The semantic mapper of Chae et al. (NeurIPS 2023)
translates, and is the only part that needs labelled pairs: a few images whose user mask is
known and whose proxy mask comes from their inversion into the generator. The paper leaves the
network open; catgen's (docs/sis_ug.md):

    input Tensor[B, in_channels, H, W] -> conv3x3 stem (width) -> stride-2 conv3x3 stages down
    to the proxy resolution (width doubling, at most 4x) -> ``num_blocks`` residual blocks
    (GroupNorm, SiLU, dilated conv3x3: dilations 1, 2, 4, ... for context) -> conv1x1 -> logits
    Tensor[B, k, h, w]

Trained with cross-entropy against the proxy masks; its argmax (or its softmax, a soft mask)
is the rearranger's target.
"""
import math

import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


class DilatedBlock(nn.Module):
    """Residual ``GroupNorm -> SiLU -> conv3x3 (dilation d)`` x 2."""

    def __init__(self, channels, dilation=1):
        super().__init__()
        g = min(8, channels)
        self.body = nn.Sequential(
            nn.GroupNorm(g, channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.GroupNorm(g, channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


@MODELS.register_module()
class SemanticMapper(nn.Module):
    """Conv net from a user mask at image size to proxy-mask logits at the proxy resolution.

    Args:
        in_channels: input channels (the data's classes for one-hot label maps or scribbles;
            1 for an edge sketch).
        num_clusters: k, the proxy masks' clusters (the output channels).
        input_size: input resolution (the image size).
        output_size: the proxy resolution (a power-of-2 fraction of ``input_size``).
        width: channels of the stem (doubling per stride-2 stage, at most 4x).
        num_blocks: residual blocks at the proxy resolution (dilations 1, 2, 4, ... cycling
            up to 8).
    """

    def __init__(self, in_channels, num_clusters, input_size, output_size, width=32,
                 num_blocks=4):
        super().__init__()
        ratio = int(input_size) // int(output_size)
        downs = int(round(math.log2(max(ratio, 1))))
        if ratio < 1 or 2 ** downs != ratio or ratio * int(output_size) != int(input_size):
            raise ValueError(f'SemanticMapper: input_size ({input_size}) must be a power-of-2 '
                             f'multiple of output_size ({output_size})')
        self.in_channels = int(in_channels)
        self.num_clusters = int(num_clusters)
        self.input_size = int(input_size)
        self.output_size = int(output_size)
        layers = [nn.Conv2d(self.in_channels, width, 3, padding=1)]
        ch = width
        for i in range(downs):
            out = min(width * 2 ** (i + 1), width * 4)
            layers += [nn.SiLU(), nn.Conv2d(ch, out, 3, stride=2, padding=1)]
            ch = out
        layers += [DilatedBlock(ch, dilation=2 ** (i % 4)) for i in range(num_blocks)]
        layers += [nn.GroupNorm(min(8, ch), ch), nn.SiLU(), nn.Conv2d(ch, self.num_clusters, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        """x: Tensor[B, in_channels, H, W] (resized to ``input_size``, nearest) -> logits
        Tensor[B, k, output_size, output_size]."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f'SemanticMapper expects {self.in_channels} input channels, got '
                             f'{x.shape[1]}')
        if tuple(x.shape[-2:]) != (self.input_size,) * 2:
            x = F.interpolate(x, size=(self.input_size,) * 2, mode='nearest')
        return self.net(x)
