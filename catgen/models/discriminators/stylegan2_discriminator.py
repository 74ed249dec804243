"""StyleGAN2 residual discriminator (Karras et al., CVPR 2020), pure PyTorch.

Parameter names follow rosinality/stylegan2-pytorch (``convs.{i}``, ``final_conv``,
``final_linear``), so its checkpoints load after :mod:`catgen.models.stylegan2_checkpoint`:

    ``convs.0``: 1x1 conv from RGB (channels of the full resolution)
    ``convs.1`` .. : residual blocks, each halving the resolution down to 4x4
        (3x3 conv, blur + stride-2 3x3 conv; skip: blur + stride-2 1x1 conv; sum / sqrt(2))
    minibatch standard deviation (groups of min(B, 4), one feature map)
    ``final_conv``: 3x3 conv; ``final_linear``: 4*4*C -> C (lReLU) -> 1
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn

from catgen.models.generators.stylegan2_generator import check_size, stylegan2_channels
from catgen.models.layers.equalized import EqualConv2d, EqualLinear, FusedLeakyReLU
from catgen.models.layers.upfirdn2d import Blur
from catgen.models.protocol import TransferableDiscriminator
from catgen.registry import MODELS


class ConvLayer(nn.Sequential):
    """[blur] -> equalised conv -> [bias + leaky ReLU]; stride 2 after the blur when
    downsampling.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        downsample: halve the resolution (blur, then a stride-2 convolution without padding).
        blur_taps: the blur filter.
        bias: learn a bias (in the activation when there is one).
        activate: end with the fused leaky ReLU.
    """

    def __init__(self, in_channels, out_channels, kernel_size, downsample=False,
                 blur_taps=(1, 3, 3, 1), bias=True, activate=True):
        layers = []
        if downsample:
            p = (len(blur_taps) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_taps, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                  padding=padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual downsampling block: ``(conv2(conv1(x)) + skip(x)) / sqrt(2)``, half the size.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        blur_taps: the blur filter.
    """

    def __init__(self, in_channels, out_channels, blur_taps=(1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_taps=blur_taps)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_taps=blur_taps)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, blur_taps=blur_taps,
                              activate=False, bias=False)

    def forward(self, x):
        """x: Tensor[B, in, H, W] -> Tensor[B, out, H/2, W/2]."""
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x, group_size=4, num_features=1):
    """Append the minibatch standard deviation as ``num_features`` extra channels.

    Samples are split into groups of ``min(B, group_size)`` (sample ``i`` is in group
    ``i % (B / G)``, as the official code); per group, the std over the group of every
    feature, averaged over channels and pixels, is broadcast as a constant map.

    Args:
        x: Tensor[B, C, H, W]; B must be divisible by ``min(B, group_size)``.

    Returns:
        Tensor[B, C + num_features, H, W].
    """
    b, c, h, w = x.shape
    g = min(b, group_size)
    if b % g:
        raise ValueError(f'the minibatch standard deviation splits the batch into groups of '
                         f'{g}; the batch size {b} is not divisible by it. Use a batch size '
                         f'divisible by {group_size} (or smaller than it).')
    y = x.view(g, -1, num_features, c // num_features, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)          # [B/G, F, 1, 1]
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


@MODELS.register_module()
class StyleGAN2Discriminator(nn.Module, TransferableDiscriminator):
    """StyleGAN2 discriminator: ``D(img, seg) -> logits Tensor[B, 1]`` (``seg`` is ignored).

    Args:
        size: input resolution (a power of 2).
        channel_multiplier: the ``cm`` of the channel table (2).
        max_channels: channel cap (512).
        channel_base: channels at resolution r are ``channel_base * cm // r`` below the cap.
        blur_taps: the resampling filter.
        stddev_group: group size of the minibatch standard deviation (4).
        num_classes: must be 0 (unconditional; the image-only data preprocessor's).
    """

    def __init__(self, size=256, channel_multiplier=2, max_channels=512, channel_base=16384,
                 blur_taps=(1, 3, 3, 1), stddev_group=4, num_classes=0):
        super().__init__()
        if num_classes:
            raise ValueError(f'StyleGAN2Discriminator is unconditional, but was given '
                             f'num_classes={num_classes}; use ImageDataPreprocessor with it.')
        self.num_classes = 0
        self.size = int(size)
        log_size = check_size(self.size)
        ch = stylegan2_channels(size, channel_multiplier, max_channels, channel_base)
        convs = [ConvLayer(3, ch[self.size], 1)]
        in_ch = ch[self.size]
        for log_res in range(log_size, 2, -1):
            out_ch = ch[2 ** (log_res - 1)]
            convs.append(ResBlock(in_ch, out_ch, blur_taps))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.stddev_group = stddev_group
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation='fused_lrelu'), EqualLinear(ch[4], 1))

    # ------------------------------------------------------------------ model protocol
    def feature_levels(self):
        """``convs.0`` (full size) .. ``convs.{n}`` (4x4), then ``final_conv``."""
        return tuple(f'convs.{i}' for i in range(len(self.convs))) + ('final_conv',)

    def input_levels(self):
        levels = [[f'convs.{i}'] for i in range(len(self.convs))]
        return levels + [['final_conv'], ['final_linear']]

    def log_likelihood(self, output, seg, kind='real'):
        """'real': mean ``log sigmoid(logit)``."""
        if kind != 'real':
            raise ValueError(f"StyleGAN2Discriminator has no class head: kind must be 'real', "
                             f'got {kind!r}')
        return torch.nn.functional.logsigmoid(output).mean()

    # ------------------------------------------------------------------ forward
    def forward(self, img, seg=None, return_features=False):
        """img: Tensor[B, 3, size, size] in [-1, 1] -> logits Tensor[B, 1] (and the feature
        levels with ``return_features``)."""
        feats = OrderedDict()
        out = img
        for i, layer in enumerate(self.convs):
            out = layer(out)
            feats[f'convs.{i}'] = out
        out = minibatch_stddev(out, self.stddev_group)
        out = self.final_conv(out)
        feats['final_conv'] = out
        out = self.final_linear(out.flatten(1))
        return (out, feats) if return_features else out
