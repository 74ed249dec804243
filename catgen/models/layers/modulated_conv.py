"""StyleGAN2's style-modulated convolution and the generator blocks built on it.

A modulated convolution scales its weight per sample by a style (an affine map of the latent
w), then *demodulates* it (divides each output filter by its norm), which replaces AdaIN's
instance normalisation: the output statistics are those of unit-variance inputs. Noise
injection adds per-pixel Gaussian noise with one learned strength per layer.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .equalized import EqualLinear, FusedLeakyReLU
from .upfirdn2d import Blur, Upsample


class ModulatedConv2d(nn.Module):
    """Convolution whose weight is modulated per sample by a style vector.

    ``w'[b, o, i] = scale * w[o, i] * s[b, i]``, ``s = affine(style)`` (bias initialised to 1);
    with demodulation ``w''[b, o] = w'[b, o] / sqrt(sum_{i,k} w'[b, o, i, k] ** 2 + 1e-8)``. The
    batch is run as one grouped convolution. Upsampling: a stride-2 transposed convolution
    followed by the ``[1, 3, 3, 1]`` blur.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size (3, or 1 for ToRGB).
        style_dim: size of the style vector w.
        demodulate: divide by the filter norm (False in ToRGB).
        upsample: double the resolution.
        blur_taps: the blur filter (``[1, 3, 3, 1]``).
        fused: True: modulate the weights, one grouped convolution (the official default);
            False: modulate the activations and demodulate the output, one ordinary
            convolution (the same maths up to float rounding; NVlabs' ``fused_modconv=False``,
            faster on CPU and for large batches).
    """

    def __init__(self, in_channels, out_channels, kernel_size, style_dim, demodulate=True,
                 upsample=False, blur_taps=(1, 3, 3, 1), fused=True):
        super().__init__()
        self.fused = fused
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        if upsample:
            factor = 2
            p = (len(blur_taps) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_taps, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)

    def forward(self, x, style):
        """x: Tensor[B, in, H, W]; style: Tensor[B, style_dim] -> Tensor[B, out, H', W']
        (H' = 2H with upsampling, else H)."""
        if not self.fused:
            return self._forward_unfused(x, style)
        b, c, h, w = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        weight = self.scale * self.weight * s                   # [B, out, in, k, k]
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(b, self.out_channels, 1, 1, 1)
        k, o = self.kernel_size, self.out_channels
        # the official op order (a view to [B*out, in, k, k] first): bit-identical gradients
        weight = weight.view(b * o, c, k, k)
        x = x.reshape(1, b * c, h, w)
        if self.upsample:
            weight = weight.view(b, o, c, k, k).transpose(1, 2).reshape(b * c, o, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            return self.blur(out.view(b, o, *out.shape[2:]))
        out = F.conv2d(x, weight, padding=self.padding, groups=b)
        return out.view(b, self.out_channels, *out.shape[2:])

    def _forward_unfused(self, x, style):
        """The same maths with the style applied to the activations: ``conv(x * s, w) * d``
        (``d`` the demodulation coefficients), one ordinary convolution for the whole batch."""
        b = x.shape[0]
        s = self.modulation(style)                               # [B, in]
        weight = self.scale * self.weight[0]                     # [out, in, k, k]
        x = x * s.view(b, -1, 1, 1)
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2)
            out = self.blur(out)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt((weight[None] * s.view(b, 1, -1, 1, 1)).pow(2).sum([2, 3, 4]) + 1e-8)
            out = out * d.view(b, -1, 1, 1)
        return out

    def extra_repr(self):
        return (f'{self.in_channels}, {self.out_channels}, {self.kernel_size}, '
                f'demodulate={self.demodulate}, upsample={self.upsample}, fused={self.fused}')


class NoiseInjection(nn.Module):
    """``x + strength * noise``; ``noise`` Tensor[B, 1, H, W] ~ N(0, 1), drawn when not given;
    ``strength`` one learned scalar (initialised to 0)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        """x: Tensor[B, C, H, W]; noise: Tensor[B or 1, 1, H, W] or None -> Tensor[B, C, H, W]."""
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, *x.shape[2:]).normal_()
        return x + self.weight * noise


class ScaleShift(nn.Module):
    """Per-channel ``x * weight + bias`` (initialised to the identity): a BSA site.

    Args:
        channels: number of channels (dim 1).
    """

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        """x: Tensor[B, channels, H, W] -> same shape."""
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class StyledConv(nn.Module):
    """Modulated 3x3 convolution, (optional) scale/shift, noise injection, bias + leaky ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size (3).
        style_dim: size of w.
        upsample: double the resolution.
        blur_taps: the blur filter.
        demodulate: demodulate the weights.
        scale_shift: a per-channel scale/shift after the demodulated convolution (BSA's site,
            the analogue of a normalisation's affine; not in StyleGAN2).
        fused: see :class:`ModulatedConv2d`.
    """

    def __init__(self, in_channels, out_channels, kernel_size, style_dim, upsample=False,
                 blur_taps=(1, 3, 3, 1), demodulate=True, scale_shift=False, fused=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim,
                                    demodulate=demodulate, upsample=upsample,
                                    blur_taps=blur_taps, fused=fused)
        self.scale_shift = ScaleShift(out_channels) if scale_shift else None
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(self, x, style, noise=None):
        """x: Tensor[B, in, H, W]; style: Tensor[B, style_dim]; noise: Tensor[B, 1, H', W'] or
        None (drawn) -> Tensor[B, out, H', W']."""
        out = self.conv(x, style)
        if self.scale_shift is not None:
            out = self.scale_shift(out)
        out = self.noise(out, noise)
        return self.activate(out)


class ToRGB(nn.Module):
    """1x1 modulated convolution to RGB without demodulation, plus a bias; adds the upsampled
    RGB of the previous resolution (the skip architecture).

    Args:
        in_channels: input channels.
        style_dim: size of w.
        upsample: upsample the incoming skip image (False at 4x4, where there is none).
        blur_taps: the blur filter of the upsampling.
        fused: see :class:`ModulatedConv2d`.
    """

    def __init__(self, in_channels, style_dim, upsample=True, blur_taps=(1, 3, 3, 1),
                 fused=True):
        super().__init__()
        self.upsample = Upsample(blur_taps) if upsample else None
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        """x: Tensor[B, in, H, W]; style: Tensor[B, style_dim]; skip: Tensor[B, 3, H/2, W/2] or
        None -> Tensor[B, 3, H, W]."""
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    """A learned constant Tensor[1, C, size, size] repeated over the batch (the synthesis
    network's input).

    Args:
        channels: C.
        size: spatial size (4).
    """

    def __init__(self, channels, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch_size):
        """-> Tensor[batch_size, C, size, size]."""
        return self.input.repeat(batch_size, 1, 1, 1)
