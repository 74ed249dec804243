"""Equalised-learning-rate layers of StyleGAN2 (Karras et al.), and its fused leaky ReLU.

An equalised layer stores its weight as ``N(0, 1) / lr_mul`` and multiplies it by
``lr_mul / sqrt(fan_in)`` at every forward, so that Adam's per-parameter step sizes act on
weights of the same scale whatever the fan-in (and ``lr_mul`` slows a layer down: the mapping
network uses 0.01).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

#: StyleGAN2's activation gain: leaky ReLU(0.2) followed by a factor sqrt(2)
ACT_GAIN = math.sqrt(2)


def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=ACT_GAIN):
    """``leaky_relu(x + bias, negative_slope) * scale``, the bias broadcast along dim 1.

    Args:
        x: Tensor[B, C, ...].
        bias: Tensor[C] or None (no bias).
    """
    if bias is not None:
        x = x + bias.view((1, -1) + (1,) * (x.dim() - 2))
    return F.leaky_relu(x, negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    """A learned per-channel bias (optional), leaky ReLU(0.2), times sqrt(2).

    Args:
        channels: number of channels (dim 1) of the input.
        bias: learn the bias.
    """

    def __init__(self, channels, bias=True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x):
        """x: Tensor[B, channels, ...] -> same shape."""
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    """``x * rsqrt(mean(x ** 2, dim=1) + 1e-8)``: every latent on the sphere of radius
    sqrt(dim)."""

    def forward(self, x):
        """x: Tensor[B, D] -> Tensor[B, D]."""
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """A linear layer with an equalised learning rate.

    Args:
        in_features: input size.
        out_features: output size.
        bias: learn a bias.
        bias_init: initial value of the bias (1 for the style affine of a modulated conv).
        lr_mul: learning-rate multiplier (0.01 in the mapping network).
        activation: None, or ``'fused_lrelu'`` (bias, leaky ReLU 0.2, times sqrt(2)).
    """

    def __init__(self, in_features, out_features, bias=True, bias_init=0.0, lr_mul=1.0,
                 activation=None):
        super().__init__()
        if activation not in (None, 'fused_lrelu'):
            raise ValueError(f"EqualLinear activation must be None or 'fused_lrelu', got "
                             f'{activation!r}')
        self.weight = nn.Parameter(torch.randn(out_features, in_features).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x):
        """x: Tensor[B, in_features] -> Tensor[B, out_features]."""
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation == 'fused_lrelu':
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self):
        return (f'{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, '
                f'activation={self.activation}')


class EqualConv2d(nn.Module):
    """A 2D convolution with an equalised learning rate.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: stride.
        padding: zero padding.
        bias: learn a bias.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x):
        """x: Tensor[B, in_channels, H, W] -> Tensor[B, out_channels, H', W']."""
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride,
                        padding=self.padding)

    def extra_repr(self):
        o, i, k, _ = self.weight.shape
        return f'{i}, {o}, {k}, stride={self.stride}, padding={self.padding}'
