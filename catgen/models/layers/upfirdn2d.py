"""Upsample, FIR-filter, downsample (``upfirdn2d``) in pure PyTorch, and StyleGAN2's blur layers.

StyleGAN2 resamples with a separable ``[1, 3, 3, 1]`` low-pass filter: after a stride-2
transposed convolution (generator), before a stride-2 convolution (discriminator), and to
upsample the skip RGB image. NVlabs ship this as a CUDA kernel; here it is three tensor
operations (zero insertion, padding, a depthwise convolution with the flipped kernel, strided
slicing) that run on any device and give the same result up to float rounding.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def make_blur_kernel(taps):
    """A normalised 2D FIR kernel from ``taps``.

    Args:
        taps: 1D list (separable: the outer product is taken) or 2D list of filter taps.

    Returns:
        float32 Tensor[k, k] summing to 1.
    """
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.dim() == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
    """Upsample by zero insertion, pad, filter with ``kernel``, downsample by striding.

    Args:
        x: Tensor[B, C, H, W].
        kernel: Tensor[kh, kw], applied to every channel (convolution, i.e. flipped).
        up: integer upsampling factor (``up - 1`` zeros inserted after every pixel).
        down: integer downsampling factor (every ``down``-th pixel kept).
        pad: ``(before, after)`` padding of both spatial axes (negative crops).

    Returns:
        Tensor[B, C, (H * up + before + after - kh) // down + 1, ...].
    """
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    if p0 < 0 or p1 < 0:
        hh, ww = x.shape[2:]
        x = x[:, :, max(-p0, 0):hh - max(-p1, 0), max(-p0, 0):ww - max(-p1, 0)]
    weight = torch.flip(kernel, (0, 1)).to(x)[None, None].expand(c, 1, *kernel.shape)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


class Blur(nn.Module):
    """Low-pass filter with padding (no resampling), StyleGAN2's ``Blur``.

    Args:
        taps: filter taps (``[1, 3, 3, 1]``).
        pad: ``(before, after)`` padding.
        upsample_factor: the kernel is scaled by ``factor ** 2`` when it follows an upsampling
            (zero insertion keeps one pixel in ``factor ** 2``).
    """

    def __init__(self, taps=(1, 3, 3, 1), pad=(0, 0), upsample_factor=1):
        super().__init__()
        # a constant of the architecture: not saved in checkpoints
        self.register_buffer('kernel', make_blur_kernel(taps) * upsample_factor ** 2,
                             persistent=False)
        self.pad = tuple(pad)

    def forward(self, x):
        """x: Tensor[B, C, H, W] -> Tensor[B, C, H + sum(pad) - k + 1, ...]."""
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling (the generator's skip RGB path).

    Args:
        taps: filter taps (``[1, 3, 3, 1]``).
        factor: upsampling factor (2).
    """

    def __init__(self, taps=(1, 3, 3, 1), factor=2):
        super().__init__()
        kernel = make_blur_kernel(taps) * factor ** 2
        self.register_buffer('kernel', kernel, persistent=False)
        self.factor = factor
        p = kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        """x: Tensor[B, C, H, W] -> Tensor[B, C, factor * H, factor * W]."""
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)
