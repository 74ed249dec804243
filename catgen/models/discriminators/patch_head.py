"""PatchHead: CDC's patch-level discriminator head on one intermediate discriminator feature map.

Ojha et al. (CVPR 2021) add, away from the anchor regions, a patch-level discriminator: a small
3x3 convolution (-> 1 channel) on one intermediate feature level of the discriminator, whose
output map is one real/fake logit per receptive-field patch. The head belongs to the transfer
strategy (``transfer.patch_head.*`` in checkpoints) and trains with the discriminator's optimizer.
"""
import torch.nn as nn

from catgen.registry import MODELS


@MODELS.register_module()
class PatchHead(nn.Module):
    """A 3x3 convolution from a discriminator feature map to one logit per patch.

    Args:
        in_channels: channels of the feature level it reads.
        kernel_size: convolution size (3, as the official code).
    """

    def __init__(self, in_channels, kernel_size=3):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f'PatchHead needs in_channels >= 1, got {in_channels}')
        self.conv = nn.Conv2d(int(in_channels), 1, kernel_size, padding=kernel_size // 2)

    def forward(self, feat):
        """feat: Tensor[B, C, h, w] -> patch logits Tensor[B, 1, h, w]."""
        return self.conv(feat)
