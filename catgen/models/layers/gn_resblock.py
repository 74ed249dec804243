"""GNResBlock: the guided-diffusion residual block without a time embedding (CA2-SIS's decoder).

    h = conv3x3(SiLU(GN32(x)))          (nearest x2 upsampling of h before the conv, and of x,
                                         when ``upsample``)
    h = conv3x3_zero(SiLU(GN32(h)))      (dropout before it; the conv starts at zero)
    out = skip(x) + h                    (skip: identity, or a 1x1 conv when the width changes)

The zero-initialised last conv makes every block start as its skip path.
"""
import torch.nn as nn
import torch.nn.functional as F


def group_norm(channels, groups=32, eps=1e-5):
    """GroupNorm with ``min(groups, channels)`` groups (32 as the official code for >= 32)."""
    return nn.GroupNorm(min(groups, channels), channels, eps=eps)


class GNResBlock(nn.Module):
    """Residual block ``GN -> SiLU -> conv3x3 -> GN -> SiLU -> dropout -> zero conv3x3``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        upsample: nearest x2 upsampling (of the hidden state after the first GN/SiLU, and of
            the input of the skip path).
        dropout: dropout probability before the last conv (0 in CA2-SIS).
    """

    def __init__(self, in_channels, out_channels, upsample=False, dropout=0.0):
        super().__init__()
        self.upsample = bool(upsample)
        self.in_layers = nn.Sequential(group_norm(in_channels), nn.SiLU(),
                                       nn.Conv2d(in_channels, out_channels, 3, padding=1))
        last = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.out_layers = nn.Sequential(group_norm(out_channels), nn.SiLU(),
                                        nn.Dropout(dropout), last)
        self.skip_connection = (nn.Identity() if in_channels == out_channels
                                else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x):
        """x: Tensor[B, in, H, W] -> Tensor[B, out, H', W'] (H' = 2H with ``upsample``)."""
        norm, act, conv = self.in_layers
        h = act(norm(x))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode='nearest')
            x = F.interpolate(x, scale_factor=2, mode='nearest')
        h = self.out_layers(conv(h))
        return self.skip_connection(x) + h
