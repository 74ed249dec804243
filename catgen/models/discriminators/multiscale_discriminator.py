"""SPADE's multi-scale PatchGAN discriminator (official ``MultiscaleDiscriminator``)."""
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.discriminators.patchgan_discriminator import PatchGANDiscriminator
from catgen.registry import MODELS


@MODELS.register_module()
class MultiScalePatchGANDiscriminator(nn.Module):
    """``num_scales`` independent PatchGAN discriminators on successively halved inputs.

    Scale 0 sees the full-resolution ``cat([seg, img])``; before each next scale the input is
    average-pooled (kernel 3, stride 2, padding 1, ``count_include_pad=False``, as official; the
    one-hot map is pooled too, so it becomes soft). Sub-discriminators are named
    ``discriminator_0`` .. as in the official code.

    Args:
        num_classes: channels of the one-hot label map, the don't-care channel included.
        num_scales: official ``num_D`` (2).
        num_layers: official ``n_layers_D`` of each PatchGAN (4).
        base_channels: official ``ndf`` (64).
        img_channels: channels of the image (3).
        spectral_norm: spectral norm on the PatchGANs' middle convs (official 'spectralinstance').
        norm_type: norm after those convs, 'instance' (official), 'batch' or 'none'.
        init_type: weight initialisation, official 'xavier'.
        init_gain: gain of that initialisation (official 0.02).
    """

    def __init__(self, num_classes, num_scales=2, num_layers=4, base_channels=64, img_channels=3,
                 spectral_norm=True, norm_type='instance', init_type='xavier', init_gain=0.02):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f'num_scales must be >= 1, got {num_scales}')
        self.num_classes = num_classes
        self.num_scales = num_scales
        for i in range(num_scales):
            self.add_module(f'discriminator_{i}', PatchGANDiscriminator(
                num_classes, num_layers=num_layers, base_channels=base_channels,
                img_channels=img_channels, spectral_norm=spectral_norm, norm_type=norm_type,
                init_type=init_type, init_gain=init_gain))

    @staticmethod
    def downsample(x):
        """Tensor[B, C, H, W] -> Tensor[B, C, ceil(H/2), ceil(W/2)] (official average pooling)."""
        return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)

    def forward(self, img, seg):
        """Score image patches at every scale.

        Args:
            img: Tensor[B, 3, H, W] in [-1, 1].
            seg: Tensor[B, num_classes, H, W], one-hot label map.

        Returns:
            list (one per scale, full resolution first) of lists of ``num_layers + 1`` tensors:
            the intermediate features, then the patch logits ``Tensor[B, 1, h, w]`` last.
        """
        results = []
        for i in range(self.num_scales):
            results.append(getattr(self, f'discriminator_{i}')(img, seg))
            if i + 1 < self.num_scales:
                # Pooling is per channel, so pooling img and seg apart equals pooling their concat.
                img, seg = self.downsample(img), self.downsample(seg)
        return results
