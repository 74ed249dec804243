"""The SPADE residual block shared by the OASIS and SPADE generators."""
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm as sn

from .spade import SPADE


class SPADEResBlock(nn.Module):
    """SPADE -> LeakyReLU(0.2) -> 3x3 conv -> SPADE -> LeakyReLU(0.2) -> 3x3 conv, plus a shortcut.

    The middle width is ``min(in_channels, out_channels)``. Where the widths differ the shortcut is
    a learned 1x1 conv without bias, preceded by its own SPADE (no activation). Spectral norm, when
    on, wraps the three convs (not the SPADE convs), as in the official OASIS and SPADE code.

    Args:
        in_channels: channels of the input feature map.
        out_channels: channels of the output feature map.
        label_nc: channels of the conditioning map given to every SPADE.
        spectral_norm: wrap the block's convs in spectral normalisation.
        norm_type: parameter-free norm inside SPADE, 'batch' or 'instance'.
        hidden_nc: width of SPADE's shared embedding.
        norm_affine: per-channel scale/shift in every SPADE's norm (see :class:`SPADE`).
    """

    def __init__(self, in_channels, out_channels, label_nc, spectral_norm=True, norm_type='batch',
                 hidden_nc=128, norm_affine=False):
        super().__init__()
        self.learned_shortcut = in_channels != out_channels
        mid = min(in_channels, out_channels)
        wrap = sn if spectral_norm else (lambda m: m)
        self.conv_0 = wrap(nn.Conv2d(in_channels, mid, 3, padding=1))
        self.conv_1 = wrap(nn.Conv2d(mid, out_channels, 3, padding=1))
        self.norm_0 = SPADE(in_channels, label_nc, hidden_nc, norm_type=norm_type,
                           norm_affine=norm_affine)
        self.norm_1 = SPADE(mid, label_nc, hidden_nc, norm_type=norm_type,
                           norm_affine=norm_affine)
        if self.learned_shortcut:
            self.conv_s = wrap(nn.Conv2d(in_channels, out_channels, 1, bias=False))
            self.norm_s = SPADE(in_channels, label_nc, hidden_nc, norm_type=norm_type,
                           norm_affine=norm_affine)
        # in place, as the official blocks: it acts on SPADE's fresh output, which nothing else
        # reads (one temporary less per SPADE; the values and gradients are the same)
        self.activ = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x, seg):
        """x: Tensor[B, in, H, W]; seg: Tensor[B, label_nc, h, w] -> Tensor[B, out, H, W]."""
        if seg.shape[2:] != x.shape[2:]:  # resize once for the block's two or three SPADEs
            seg = F.interpolate(seg, size=x.shape[2:], mode='nearest')
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(self.activ(self.norm_0(x, seg)))
        dx = self.conv_1(self.activ(self.norm_1(dx, seg)))
        return x_s + dx
