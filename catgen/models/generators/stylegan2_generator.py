"""StyleGAN2 generator (Karras et al., CVPR 2020), config-F, skip architecture, pure PyTorch.

The layout and the parameter names follow the rosinality/stylegan2-pytorch checkpoints that
the few-shot adaptation papers (CDC, DCL, ...) release their source models in, so that their
weights load after :mod:`catgen.models.stylegan2_checkpoint` strips the prefixes:

    mapping ``style``: PixelNorm, n_mlp x EqualLinear(style_dim, lr_mul 0.01, fused lReLU)
    ``input``: a learned 4x4 constant
    ``conv1``, ``to_rgb1``: a StyledConv and a ToRGB at 4x4
    ``convs.{2j}``, ``convs.{2j+1}``, ``to_rgbs.{j}``: per resolution 8 .. size, an upsampling
        StyledConv, a StyledConv and a ToRGB whose output adds to the upsampled RGB so far
    ``noises.noise_{i}``: one fixed noise map per layer (used with ``noise_mode='const'``)

Channels at resolution r: ``min(max_channels, channel_base * channel_multiplier // r)``, which
is the official table for the defaults (512 up to 32 px, then 256 * cm at 64, 128 * cm at 128,
64 * cm at 256, ...).
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn

from catgen.models.layers.equalized import EqualLinear, PixelNorm
from catgen.models.layers.modulated_conv import ConstantInput, StyledConv, ToRGB
from catgen.models.protocol import TransferableGenerator
from catgen.registry import MODELS


def stylegan2_channels(size, channel_multiplier=2, max_channels=512, channel_base=16384):
    """``{resolution: channels}`` for 4 .. ``size`` (the official table for the defaults)."""
    out = {}
    res = 4
    while res <= size:
        out[res] = int(min(max_channels, channel_base * channel_multiplier // res))
        res *= 2
    return out


def check_size(size):
    """``log2(size)``; raise unless ``size`` is a power of 2 >= 8."""
    log = int(round(math.log2(size))) if size > 0 else 0
    if size < 8 or 2 ** log != size:
        raise ValueError(f'StyleGAN2 size must be a power of 2 >= 8, got {size}')
    return log


@MODELS.register_module()
class StyleGAN2Generator(nn.Module, TransferableGenerator):
    """Unconditional StyleGAN2 generator: ``G(seg, z) -> img`` (``seg`` only gives the batch).

    Latents: ``z`` Tensor[B, style_dim] (one latent for every layer) or Tensor[B, n_latent,
    style_dim] (one per layer: style mixing, see :func:`mix_latents`); with
    ``input_is_latent=True`` these are w's, already mapped. ``n_latent = 2 * log2(size) - 2``.

    Args:
        size: output resolution (a power of 2, e.g. 256).
        style_dim: size of z and w (512).
        n_mlp: layers of the mapping network (8).
        channel_multiplier: the ``cm`` of the channel table (2 = config-F).
        max_channels: channel cap (512).
        channel_base: channels at resolution r are ``channel_base * cm // r`` below the cap.
        lr_mlp: learning-rate multiplier of the mapping network (0.01).
        blur_taps: the resampling filter (``[1, 3, 3, 1]``).
        scale_shift: a per-channel scale/shift after every demodulated convolution (BSA's
            sites; off in StyleGAN2, a BSA config turns it on).
        fused_modconv: modulate the weights (True, the official default: one grouped
            convolution) or the activations (False: the same maths, faster on CPU and for large
            batches; see :class:`~catgen.models.layers.modulated_conv.ModulatedConv2d`).
        noise_mode: ``'random'`` (fresh per-pixel noise on every call, as in training) or
            ``'const'`` (the stored ``noises`` buffers) when ``forward`` gets no ``noise``.
        num_classes: label channels it reads: must be 0 (the image-only data preprocessor's).
    """

    def __init__(self, size=256, style_dim=512, n_mlp=8, channel_multiplier=2, max_channels=512,
                 channel_base=16384, lr_mlp=0.01, blur_taps=(1, 3, 3, 1), scale_shift=False,
                 fused_modconv=True, noise_mode='random', num_classes=0):
        super().__init__()
        if num_classes:
            raise ValueError(f'StyleGAN2Generator is unconditional and reads no label map, but '
                             f'was given num_classes={num_classes}; use the image-only data '
                             'preprocessor (ImageDataPreprocessor) with it.')
        if noise_mode not in ('random', 'const'):
            raise ValueError(f"noise_mode must be 'random' or 'const', got {noise_mode!r}")
        self.num_classes = 0
        self.size = int(size)
        self.output_size = (self.size, self.size)
        self.log_size = check_size(self.size)
        self.style_dim = self.z_dim = int(style_dim)
        self.noise_mode = noise_mode
        self.channels = stylegan2_channels(size, channel_multiplier, max_channels, channel_base)
        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation='fused_lrelu')
            for _ in range(n_mlp)])

        ch = self.channels
        self.input = ConstantInput(ch[4])
        fused = dict(fused=fused_modconv)
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_taps=blur_taps,
                                scale_shift=scale_shift, **fused)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False, **fused)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f'noise_{i}', torch.randn(1, 1, res, res))
        in_ch = ch[4]
        for log_res in range(3, self.log_size + 1):
            out_ch = ch[2 ** log_res]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True,
                                         blur_taps=blur_taps, scale_shift=scale_shift, **fused))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_taps=blur_taps,
                                         scale_shift=scale_shift, **fused))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, blur_taps=blur_taps, **fused))
            in_ch = out_ch

    # ------------------------------------------------------------------ model protocol
    def feature_levels(self):
        """The StyledConv outputs, 4x4 to full size: ``conv1``, ``convs.0`` ... (CDC/DCL)."""
        return ('conv1',) + tuple(f'convs.{i}' for i in range(len(self.convs)))

    def scale_shift(self):
        return OrderedDict(
            (f'{name}.scale_shift', (m.scale_shift.weight, m.scale_shift.bias))
            for name, m in self.named_modules()
            if isinstance(m, StyledConv) and m.scale_shift is not None)

    def adapter_keys(self):
        return [f'{name}.{p}' for name in self.scale_shift() for p in ('weight', 'bias')]

    # ------------------------------------------------------------------ latents and noise
    def get_latent(self, z):
        """The mapping network: z Tensor[..., style_dim] -> w of the same shape."""
        shape = z.shape
        return self.style(z.reshape(-1, shape[-1])).view(shape)

    @torch.no_grad()
    def mean_latent(self, n=4096, seed=0):
        """The mean w of ``n`` latents drawn with ``seed`` (the truncation centre):
        Tensor[1, style_dim]."""
        gen = torch.Generator().manual_seed(seed)
        p = self.input.input
        z = torch.randn(n, self.style_dim, generator=gen).to(p)
        return self.get_latent(z).mean(0, keepdim=True)

    def draw_noise(self, batch_size, generator=None, device=None):
        """Per-layer noise maps ``[Tensor[B, 1, r, r]]`` (``num_layers`` of them) from
        ``generator`` (a CPU ``torch.Generator``) or the global RNG, on ``device``."""
        device = device or self.input.input.device
        out = []
        for i in range(self.num_layers):
            res = 2 ** ((i + 5) // 2)
            out.append(torch.randn(batch_size, 1, res, res, generator=generator).to(device))
        return out

    # ------------------------------------------------------------------ forward
    def forward(self, seg=None, z=None, return_features=False, noise=None, truncation=1.0,
                truncation_latent=None, input_is_latent=False, return_latents=False):
        """Generate images.

        Args:
            seg: ignored but for its batch size when ``z`` is None (Tensor[B, 0, H, W] from
                the image-only data preprocessor).
            z: Tensor[B, style_dim] or Tensor[B, n_latent, style_dim]; None draws one latent
                per sample.
            return_features: also return the StyledConv outputs (``feature_levels()``).
            noise: list of ``num_layers`` Tensor[B or 1, 1, r, r], or None (``noise_mode``).
            truncation: psi <= 1; w <- w_avg + psi * (w - w_avg) (1 = off; psi > 1, which the
                official code silently ignores, is refused).
            truncation_latent: w_avg, Tensor[1, style_dim] (:meth:`mean_latent`); needed
                when ``truncation != 1``.
            input_is_latent: ``z`` holds w's (skip the mapping network).
            return_latents: also return the per-layer w's Tensor[B, n_latent, style_dim] the
                image was made from (after truncation; for the path-length regulariser).

        Returns:
            Tensor[B, 3, size, size] (not clamped), or ``(img, OrderedDict[level, Tensor])``;
            with ``return_latents``, ``(img, w)``, or ``(img, feats, w)`` with both.
        """
        if z is None:
            if seg is None:
                raise ValueError('StyleGAN2Generator needs z or a seg tensor for the batch size')
            z = torch.randn(seg.shape[0], self.style_dim, device=self.input.input.device)
        w = z if input_is_latent else self.get_latent(z)
        if truncation > 1:
            raise ValueError(f'truncation psi must be <= 1 (1: off), got {truncation}: the '
                             'official code ignores psi > 1, catgen refuses it')
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError('truncation != 1 needs truncation_latent (G.mean_latent())')
            w = truncation_latent + truncation * (w - truncation_latent)
        if w.dim() == 2:
            w = w.unsqueeze(1).expand(-1, self.n_latent, -1)
        if w.shape[1] != self.n_latent:
            raise ValueError(f'per-layer latents must be [B, {self.n_latent}, {self.style_dim}], '
                             f'got {tuple(w.shape)}')
        if noise is None:
            noise = ([None] * self.num_layers if self.noise_mode == 'random' else
                     [getattr(self.noises, f'noise_{i}') for i in range(self.num_layers)])
        feats = OrderedDict()
        out, skip = self._blocks(None, None, w, noise, 0, self.log_size, feats)
        out = (skip, feats) if return_features else (skip,)
        if return_latents:
            out = out + (w,)
        return out if len(out) > 1 else skip

    # ------------------------------------------------------------------ split synthesis
    def _blocks(self, out, skip, w, noise, start, stop, feats=None):
        """Run the synthesis network from the state after resolution ``2 ** start`` (``start``
        0: from the constant input) to the state after resolution ``2 ** stop``.

        The state after resolution r is ``(out, skip)``: the last StyledConv's output
        Tensor[B, C_r, r, r] and the RGB image so far Tensor[B, 3, r, r]. ``w``: per-layer
        latents Tensor[B, n_latent, D]; ``noise``: the full list of per-layer noise maps.
        """
        if start == 0:
            out = self.input(w.shape[0])
            out = self.conv1(out, w[:, 0], noise=noise[0])
            if feats is not None:
                feats['conv1'] = out
            skip = self.to_rgb1(out, w[:, 1])
            start = 2
        for log_res in range(start + 1, stop + 1):
            j = log_res - 3  # the block of resolution 2 ** log_res
            i = 2 * j + 1   # its first latent
            out = self.convs[2 * j](out, w[:, i], noise=noise[2 * j + 1])
            if feats is not None:
                feats[f'convs.{2 * j}'] = out
            out = self.convs[2 * j + 1](out, w[:, i + 1], noise=noise[2 * j + 2])
            if feats is not None:
                feats[f'convs.{2 * j + 1}'] = out
            skip = self.to_rgbs[j](out, w[:, i + 2], skip)
        return out, skip

    def _split_args(self, w, noise, resolution):
        log = check_size(resolution) if resolution != 4 else 2
        if not 2 <= log <= self.log_size:
            raise ValueError(f'resolution must be a power of 2 in [4, {self.size}], got '
                             f'{resolution}')
        if w.dim() == 2:
            w = w.unsqueeze(1).expand(-1, self.n_latent, -1)
        if noise is None:
            noise = ([None] * self.num_layers if self.noise_mode == 'random' else
                     [getattr(self.noises, f'noise_{i}') for i in range(self.num_layers)])
        return w, noise, log

    def synthesis_until(self, w, resolution, noise=None):
        """The synthesis state after ``resolution``: ``(out Tensor[B, C_r, r, r], skip
        Tensor[B, 3, r, r])`` (the last StyledConv's output, the RGB image so far) of latents
        ``w`` (Tensor[B, D] or [B, n_latent, D], w's); ``noise`` as in :meth:`forward`. With
        :meth:`synthesis_from`, a forward pass cut at ``resolution`` (SIS-UG's rearranger edits
        the state in between)."""
        w, noise, log = self._split_args(w, noise, resolution)
        return self._blocks(None, None, w, noise, 0, log)

    def synthesis_from(self, out, skip, w, resolution, noise=None):
        """Go on from the state ``(out, skip)`` after ``resolution`` to the image
        Tensor[B, 3, size, size]; ``w`` and ``noise`` as in :meth:`synthesis_until` (the
        latents of the layers after ``resolution`` are used)."""
        w, noise, log = self._split_args(w, noise, resolution)
        return self._blocks(out, skip, w, noise, log, self.log_size)[1]


def mix_latents(z1, z2, n_latent, crossover=None):
    """Style mixing: per-layer latents ``[z1] * crossover + [z2] * (n_latent - crossover)``.

    Args:
        z1, z2: Tensor[B, D].
        n_latent: the generator's ``n_latent``.
        crossover: the first layer that takes ``z2``; None draws it uniformly from
            ``[1, n_latent - 1]`` (the global RNG), one for the batch as the official code.

    Returns:
        Tensor[B, n_latent, D].
    """
    if crossover is None:
        crossover = int(torch.randint(1, n_latent, ()))
    first = z1.unsqueeze(1).expand(-1, crossover, -1)
    second = z2.unsqueeze(1).expand(-1, n_latent - crossover, -1)
    return torch.cat([first, second], dim=1)
