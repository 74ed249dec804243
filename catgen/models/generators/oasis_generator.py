"""OASIS generator (Sushko et al., ICLR 2021), as the official boschresearch/OASIS code builds it.

The one-hot label map, with a noise vector repeated over every pixel and concatenated in front
("3D noise"), is resized (nearest) to the start size and lifted by a 3x3 conv; SPADE residual
blocks with nearest x2 upsampling between them follow, each conditioned on the full-resolution
noise + label tensor; LeakyReLU(0.2) -> 3x3 conv to RGB -> tanh ends it.

Module names equal the official ones (``fc``, ``body.<i>``, ``conv_img``), except that the
parameter-free norm inside SPADE is ``param_free_norm`` where the official code says
``first_norm`` (see ``catgen/models/oasis_checkpoint.py``).
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from catgen.registry import MODELS
from ..layers.spade_resblock import SPADEResBlock
from ..protocol import ClassSlice, TransferableGenerator
from ..weight_init import initialize_at_build, official_init_cfg


def spade_class_slices(network, start):
    """ClassSlices of every SPADE embedding conv (``...mlp_shared.0``) of ``network``: each
    reads the (noise +) label map, its label channels from ``start`` on."""
    return [ClassSlice(name, 'input', start) for name, _ in network.named_modules()
            if name.endswith('mlp_shared.0')]


def spade_scale_shift(network):
    """BSA's sites of a SPADE network: ``OrderedDict[name, (scale, shift)]`` of every affine
    ``param_free_norm`` (empty unless built with ``norm_affine=True``)."""
    return OrderedDict((name, (m.weight, m.bias)) for name, m in network.named_modules()
                       if name.endswith('param_free_norm') and getattr(m, 'affine', False))


def reset_scale_shift(network):
    """Set every BSA site of ``network`` to the identity: scale 1, shift 0."""
    with torch.no_grad():
        for scale, shift in spade_scale_shift(network).values():
            scale.fill_(1.0)
            shift.zero_()


@MODELS.register_module()
class OASISGenerator(TransferableGenerator, BaseModule):
    """OASIS generator: SPADE residual blocks conditioned on label map + 3D noise.

    Args:
        num_classes: semantic channels incl. the don't-care channel 0 (ADE20K 151,
            COCO-Stuff 183, Cityscapes 35).
        z_dim: noise channels concatenated in front of the label map; 0 disables the noise
            (the official ``--no_3dnoise``).
        base_channels: width unit ``ch`` (official ``channels_G``, 64); block widths are
            ``ch * channel_multipliers``.
        channel_multipliers: widths of the first conv's output and of every block's output, in
            units of ``base_channels``; length = number of SPADE blocks + 1.
        crop_size: output width in pixels (the official ``crop_size``: 256 for ADE20K and
            COCO-Stuff, 512 for Cityscapes); the start width is ``crop_size / 2**(blocks - 1)``.
        aspect_ratio: output width / height (Cityscapes 2.0: 512x256 output, 8x16 start).
        spectral_norm: spectral normalisation on the residual blocks' convs (not on ``fc``,
            ``conv_img`` or the SPADE convs, as official).
        norm_type: parameter-free norm inside SPADE, 'batch' (official 'syncbatch': catgen's
            SyncBatchNorm2d, synchronised over processes automatically under DDP) or 'instance'.
        spade_hidden: width of SPADE's shared embedding conv (128).
        init_gain: gain of the official Xavier-normal initialisation (biases 0); None keeps
            PyTorch's default.
        norm_affine: a per-channel scale (1) and shift (0) after every SPADE norm: the sites BSA
            adapts (off in OASIS; BSA configs turn it on).
        pixel_noise_std: std of i.i.d. per-pixel noise added to the ``z_dim`` noise channels of
            the input, drawn afresh on every call (0: the official noise, constant over the
            image). Gives the generator a source of per-pixel randomness for fine random
            textures; without it few-shot finetuning draws them as stripes anchored to the image
            borders (docs/transfer.md, "Stripes after finetuning"). catgen's option, not OASIS's.
        init_cfg: MMEngine initialisers overriding the official scheme (``init_gain``).

    Model protocol: class slices ``fc`` and every ``...mlp_shared.0`` (label channels after the
    ``z_dim`` noise channels); feature levels ``body.0`` .. ``body.<n-1>`` (block outputs).
    """

    def __init__(self, num_classes, z_dim=64, base_channels=64,
                 channel_multipliers=(16, 16, 16, 8, 4, 2, 1), crop_size=256, aspect_ratio=1.0,
                 spectral_norm=True, norm_type='batch', spade_hidden=128, init_gain=0.02,
                 norm_affine=False, pixel_noise_std=0.0, init_cfg=None):
        if init_cfg is None and init_gain is not None:
            init_cfg = official_init_cfg('xavier', init_gain)
        super().__init__(init_cfg=init_cfg)
        if len(channel_multipliers) < 2:
            raise ValueError('channel_multipliers needs at least 2 entries (first conv + 1 block), '
                             f'got {tuple(channel_multipliers)}')
        if z_dim < 0:
            raise ValueError(f'z_dim must be >= 0, got {z_dim}')
        if pixel_noise_std < 0 or (pixel_noise_std > 0 and z_dim == 0):
            raise ValueError(f'pixel_noise_std must be >= 0 and needs noise channels (z_dim > 0), '
                             f'got pixel_noise_std={pixel_noise_std}, z_dim={z_dim}')
        self.pixel_noise_std = float(pixel_noise_std)
        self.num_classes = num_classes
        self.z_dim = z_dim
        self.label_nc = num_classes + z_dim
        self.channels = [base_channels * m for m in channel_multipliers]
        self.num_blocks = len(self.channels) - 1
        scale = 2 ** (self.num_blocks - 1)
        if crop_size % scale:
            raise ValueError(f'crop_size must be divisible by 2**(blocks - 1) = {scale}, '
                             f'got {crop_size}')
        start_w = crop_size // scale
        start_h = round(start_w / aspect_ratio)
        if start_h < 1:
            raise ValueError(f'aspect_ratio {aspect_ratio} leaves no rows at the start size '
                             f'(start width {start_w})')
        self.start_size = (start_h, start_w)
        self.output_size = (start_h * scale, start_w * scale)

        self.fc = nn.Conv2d(self.label_nc, self.channels[0], 3, padding=1)
        self.body = nn.ModuleList([
            SPADEResBlock(self.channels[i], self.channels[i + 1], self.label_nc,
                          spectral_norm=spectral_norm, norm_type=norm_type,
                          hidden_nc=spade_hidden, norm_affine=norm_affine)
            for i in range(self.num_blocks)])
        self.up = nn.Upsample(scale_factor=2, mode='nearest')
        self.conv_img = nn.Conv2d(self.channels[-1], 3, 3, padding=1)
        initialize_at_build(self)
        reset_scale_shift(self)  # BSA's sites start as the identity

    # ---------------------------------------------------------------- model protocol
    def class_slices(self):
        return [ClassSlice('fc', 'input', self.z_dim)] + spade_class_slices(self, self.z_dim)

    def feature_levels(self):
        return tuple(f'body.{i}' for i in range(self.num_blocks))

    def scale_shift(self):
        return spade_scale_shift(self)

    def adapter_keys(self):
        return [f'{name}.{p}' for name in self.scale_shift() for p in ('weight', 'bias')]

    def spatial_noise(self, z, generator=None):
        """The full 3D noise of the input: ``z`` repeated over the pixels, plus
        ``pixel_noise_std`` x N(0, I) per pixel (drawn from ``generator``, a ``torch.Generator``
        on z's device, else from the global RNG).

        z: Tensor[B, z_dim] -> Tensor[B, z_dim, H, W] at ``self.output_size``.
        """
        h, w = self.output_size
        b = z.shape[0]
        full = z.view(b, self.z_dim, 1, 1).expand(b, self.z_dim, h, w)
        if self.pixel_noise_std > 0:
            pixel = torch.randn(b, self.z_dim, h, w, generator=generator, device=z.device,
                                dtype=z.dtype)
            full = full + self.pixel_noise_std * pixel
        return full

    def make_input(self, seg, z=None):
        """Concatenate noise in front of the label map.

        seg: Tensor[B, num_classes, H, W]; z: Tensor[B, z_dim] (repeated over the pixels, plus
        per-pixel noise when ``pixel_noise_std`` is set: :meth:`spatial_noise`), the full 3D
        noise Tensor[B, z_dim, H, W] (used as it is), or None (z drawn ~ N(0, I))
        -> Tensor[B, z_dim + num_classes, H, W].
        """
        if seg.dim() != 4 or seg.shape[1] != self.num_classes:
            raise ValueError(f'OASISGenerator expects seg of shape [B, {self.num_classes}, H, W], '
                             f'got {tuple(seg.shape)}')
        if self.z_dim == 0:
            if z is not None and z.numel() > 0:
                raise ValueError('this OASISGenerator has z_dim=0 (no noise) but z was given')
            return seg
        b, _, h, w = seg.shape
        if z is None:
            z = torch.randn(b, self.z_dim, device=seg.device, dtype=seg.dtype)
        if tuple(z.shape) == (b, self.z_dim):
            z = self.spatial_noise(z.to(seg.dtype))
        elif tuple(z.shape) != (b, self.z_dim, h, w):
            raise ValueError(f'z must have shape [B, z_dim] = [{b}, {self.z_dim}] or, the full '
                             f'3D noise, [B, z_dim, H, W] = [{b}, {self.z_dim}, {h}, {w}]; '
                             f'got {tuple(z.shape)}')
        return torch.cat((z.to(seg.dtype), seg), dim=1)

    def forward(self, seg, z=None, return_features=False):
        """Synthesise images.

        Args:
            seg: Tensor[B, num_classes, H, W], one-hot (or soft) label map with
                ``(H, W) == self.output_size``.
            z: Tensor[B, z_dim], the full 3D noise Tensor[B, z_dim, H, W], or None (then
                z ~ N(0, I) is drawn); see :meth:`make_input`.
            return_features: also return the output of every SPADE block.

        Returns:
            Tensor[B, 3, H, W] in [-1, 1]; with ``return_features`` a tuple
            ``(img, feats)``, ``feats`` an OrderedDict from ``'body.<i>'`` to that block's
            output (before upsampling), Tensor[B, channels[i + 1], h_i, w_i].
        """
        if tuple(seg.shape[2:]) != self.output_size:
            raise ValueError(
                f'this OASISGenerator makes {self.output_size[0]}x{self.output_size[1]} images '
                f'(start size {self.start_size} x 2**{self.num_blocks - 1}) but seg is '
                f'{seg.shape[2]}x{seg.shape[3]}; build it with crop_size = image width and '
                f'aspect_ratio = width / height of your label maps')
        seg = self.make_input(seg, z)
        x = F.interpolate(seg, size=self.start_size, mode='nearest')
        x = self.fc(x)
        feats = OrderedDict()
        for i, block in enumerate(self.body):
            x = block(x, seg)
            feats[f'body.{i}'] = x
            if i < self.num_blocks - 1:
                x = self.up(x)
        img = torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
        return (img, feats) if return_features else img
