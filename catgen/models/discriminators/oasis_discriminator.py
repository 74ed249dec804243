"""OASIS discriminator (Sushko et al., ICLR 2021): a U-Net segmenter with an N+1-class head.

Built as the official boschresearch/OASIS code builds it, with the same module names, so that
official state dicts load after only stripping a DataParallel ``module.`` prefix:

- ``body_down.<i>`` (i = 0..n-1): the encoder, residual blocks that halve the resolution with
  average pooling. ``body_down.0`` reads the image at full resolution and outputs H/2;
  ``body_down.<n-1>`` outputs the lowest resolution H/2**n. For FreezeD, "the encoder's first k
  blocks" are ``body_down.0`` .. ``body_down.<k-1>`` (the k highest-resolution blocks), see
  :meth:`OASISDiscriminator.encoder_block_names`.
- ``body_up.<i>`` (i = 0..n-1): the decoder, residual blocks that double the resolution with
  nearest upsampling; ``body_up.<i>`` for i >= 1 reads the concatenation
  ``[output of body_down.<n-1-i>, output of body_up.<i-1>]``. ``body_up.<n-1>`` outputs H.
- ``layer_up_last``: 1x1 conv to ``num_classes + 1`` logits per pixel (channel 0 = fake),
  without spectral norm.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm as sn

from mmengine.model import BaseModule

from catgen.registry import MODELS
from ..protocol import ClassSlice, TransferableDiscriminator
from ..weight_init import initialize_at_build, official_init_cfg


class OASISDResBlock(nn.Module):
    """The official ``residual_block_D``: a residual block that halves or doubles resolution.

    Main path: [LeakyReLU(0.2)] -> [Upsample x2 when up] -> 3x3 conv -> LeakyReLU(0.2) -> 3x3 conv
    -> [AvgPool 2 when down]; the first encoder block has no leading LeakyReLU. Shortcut: where
    widths differ a learned 1x1 conv (with bias); down blocks pool after it (the first block
    pools before it), up blocks upsample before it. Spectral norm wraps all three convs.

    Module layout (indices as official): ``conv1`` = Sequential(conv) for the first block,
    Sequential(LeakyReLU, conv) for down blocks, Sequential(LeakyReLU, Upsample, conv) for up
    blocks; ``conv2`` = Sequential(LeakyReLU, conv); ``conv_s``; ``sampling``.

    Args:
        in_channels: input width.
        out_channels: output width (also the middle width).
        up_or_down: -1 to halve the resolution (encoder), 1 to double it (decoder).
        first: the encoder's first block (reads the image).
        spectral_norm: wrap the convs in spectral normalisation.
    """

    def __init__(self, in_channels, out_channels, up_or_down, first=False, spectral_norm=True):
        super().__init__()
        if up_or_down not in (-1, 1):
            raise ValueError(f'up_or_down must be -1 (down) or 1 (up), got {up_or_down}')
        self.up_or_down = up_or_down
        self.first = first
        self.learned_shortcut = in_channels != out_channels
        wrap = sn if spectral_norm else (lambda m: m)
        conv = wrap(nn.Conv2d(in_channels, out_channels, 3, 1, 1))
        if first:
            self.conv1 = nn.Sequential(conv)
        elif up_or_down > 0:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2), conv)
        else:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2), conv)
        # in place: conv2 reads conv1's fresh output, which nothing else reads (conv1's input,
        # the block input, is kept for the shortcut); same values and gradients
        self.conv2 = nn.Sequential(nn.LeakyReLU(0.2, inplace=True),
                                   wrap(nn.Conv2d(out_channels, out_channels, 3, 1, 1)))
        if self.learned_shortcut:
            self.conv_s = wrap(nn.Conv2d(in_channels, out_channels, 1, 1, 0))
        self.sampling = nn.Upsample(scale_factor=2) if up_or_down > 0 else nn.AvgPool2d(2)

    def shortcut(self, x):
        """Shortcut path: Tensor[B, in, H, W] -> Tensor[B, out, H', W']."""
        if self.first or self.up_or_down > 0:  # resample, then 1x1 conv
            x = self.sampling(x)
            return self.conv_s(x) if self.learned_shortcut else x
        if self.learned_shortcut:  # down block: 1x1 conv, then pool
            x = self.conv_s(x)
        return self.sampling(x)

    def forward(self, x):
        """x: Tensor[B, in, H, W] -> Tensor[B, out, H/2 or 2H, W/2 or 2W]."""
        dx = self.conv2(self.conv1(x))
        if self.up_or_down < 0:
            dx = self.sampling(dx)
        return self.shortcut(x) + dx


@MODELS.register_module()
class OASISDiscriminator(TransferableDiscriminator, BaseModule):
    """OASIS U-Net discriminator: per-pixel logits over fake + the semantic classes.

    Official widths: encoder 3 -> 128 -> 128 -> 256 -> 256 -> 512 -> 512, decoder
    512 -> 512, 1024 -> 256, 512 -> 256, 512 -> 128, 256 -> 128, 256 -> 64, head 64 -> N+1.
    Inputs must be divisible by 2**len(channel_multipliers) (64 at official depth).

    Args:
        num_classes: semantic channels incl. don't care (the head has num_classes + 1 outputs,
            channel 0 = fake, channel c + 1 = semantic channel c).
        base_channels: width unit; the decoder's last block outputs ``base_channels`` (64).
        channel_multipliers: encoder block output widths in units of ``base_channels``
            (official (2, 2, 4, 4, 8, 8) -> 128, 128, 256, 256, 512, 512); the decoder mirrors them.
        spectral_norm: spectral norm on every residual-block conv (not on ``layer_up_last``).
        init_gain: gain of the official Xavier-normal initialisation (biases 0); None keeps
            PyTorch's default.
        init_cfg: MMEngine initialisers overriding the official scheme (``init_gain``).

    Model protocol: class slice ``layer_up_last`` (output rows from 1: row 0 is "fake");
    feature levels ``body_down.<i>`` then ``body_up.<i>``; input levels ``body_down.<i>``.
    """

    def __init__(self, num_classes, base_channels=64, channel_multipliers=(2, 2, 4, 4, 8, 8),
                 spectral_norm=True, init_gain=0.02, init_cfg=None):
        if init_cfg is None and init_gain is not None:
            init_cfg = official_init_cfg('xavier', init_gain)
        super().__init__(init_cfg=init_cfg)
        n = len(channel_multipliers)
        if n < 2:
            raise ValueError(f'channel_multipliers needs at least 2 entries, '
                             f'got {tuple(channel_multipliers)}')
        self.num_classes = num_classes
        self.num_blocks = n
        ch = [3] + [base_channels * m for m in channel_multipliers]
        self.channels = ch
        self.body_down = nn.ModuleList([
            OASISDResBlock(ch[i], ch[i + 1], -1, first=(i == 0), spectral_norm=spectral_norm)
            for i in range(n)])
        body_up = [OASISDResBlock(ch[-1], ch[-2], 1, spectral_norm=spectral_norm)]
        for i in range(1, n - 1):
            body_up.append(OASISDResBlock(2 * ch[-1 - i], ch[-2 - i], 1,
                                          spectral_norm=spectral_norm))
        body_up.append(OASISDResBlock(2 * ch[1], base_channels, 1, spectral_norm=spectral_norm))
        self.body_up = nn.ModuleList(body_up)
        self.layer_up_last = nn.Conv2d(base_channels, num_classes + 1, 1, 1, 0)
        initialize_at_build(self)

    # ---------------------------------------------------------------- model protocol
    def class_slices(self):
        return [ClassSlice('layer_up_last', 'output', 1)]

    def feature_levels(self):
        return tuple([f'body_down.{i}' for i in range(self.num_blocks)]
                     + [f'body_up.{i}' for i in range(self.num_blocks)])

    def input_levels(self):
        return [[f'body_down.{i}'] for i in range(self.num_blocks)]

    def log_likelihood(self, output, seg, kind='real'):
        """'real': per pixel ``log(1 - p_fake) = logsumexp(logits[1:]) - logsumexp(logits)``;
        'label': ``log_softmax(logits)[argmax(seg) + 1]`` over pixels that are not don't care;
        both averaged over pixels and the batch."""
        if kind == 'real':
            return (torch.logsumexp(output[:, 1:], 1) - torch.logsumexp(output, 1)).mean()
        if kind == 'label':
            log_p = torch.log_softmax(output, 1)
            cls = seg.argmax(dim=1)
            ll = log_p.gather(1, (cls + 1).unsqueeze(1))[:, 0]
            valid = (cls != 0).float()
            return (ll * valid).sum() / valid.sum().clamp_min(1)
        raise ValueError(f"log_likelihood kind must be 'real' or 'label', got {kind!r}")

    def forward(self, img, seg=None, return_features=False):
        """Per-pixel N+1 logits.

        Args:
            img: Tensor[B, 3, H, W] in [-1, 1], H and W divisible by 2**num_blocks.
            seg: the label map; ignored (OASIS's discriminator does not read it), accepted for
                the protocol's one call signature ``D(img, seg)``.
            return_features: also return every block's output.

        Returns:
            logits Tensor[B, num_classes + 1, H, W]; with ``return_features`` a tuple
            ``(logits, feats)``, feats an OrderedDict from module name (``'body_down.0'`` ..
            ``'body_down.<n-1>'``, ``'body_up.0'`` .. ``'body_up.<n-1>'``) to that block's
            output, in forward order.
        """
        scale = 2 ** self.num_blocks
        if img.shape[-2] % scale or img.shape[-1] % scale:
            raise ValueError(f'OASISDiscriminator needs H and W divisible by {scale}, '
                             f'got {tuple(img.shape)}')
        feats = OrderedDict()
        encoder_res = []
        x = img
        for i, block in enumerate(self.body_down):
            x = block(x)
            encoder_res.append(x)
            feats[f'body_down.{i}'] = x
        x = self.body_up[0](x)
        feats['body_up.0'] = x
        for i in range(1, self.num_blocks):
            x = self.body_up[i](torch.cat((encoder_res[-i - 1], x), dim=1))
            feats[f'body_up.{i}'] = x
        logits = self.layer_up_last(x)
        return (logits, feats) if return_features else logits
