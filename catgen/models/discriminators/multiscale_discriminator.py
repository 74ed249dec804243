"""SPADE's multi-scale PatchGAN discriminator (official ``MultiscaleDiscriminator``)."""
from collections import OrderedDict

import torch.nn as nn
import torch.nn.functional as F

from catgen.models.discriminators.patchgan_discriminator import PatchGANDiscriminator
from catgen.registry import MODELS

from ..protocol import ClassSlice, TransferableDiscriminator, mean_log_sigmoid


@MODELS.register_module()
class MultiScalePatchGANDiscriminator(TransferableDiscriminator, nn.Module):
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
        extra_label_channels: channels of ``seg`` after the class channels (SPADE's instance
            edge map: 1); filled in from the data preprocessor.
        last_stride: stride of each PatchGAN's last middle conv (SPADE 1, CA2-SIS 2).

    Model protocol: the class slices, feature levels and input levels of every scale, prefixed
    ``discriminator_<i>.``; input level j groups layer ``model<j>`` of every scale.
    """

    def __init__(self, num_classes, num_scales=2, num_layers=4, base_channels=64, img_channels=3,
                 spectral_norm=True, norm_type='instance', init_type='xavier', init_gain=0.02,
                 extra_label_channels=0, last_stride=1):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f'num_scales must be >= 1, got {num_scales}')
        self.num_classes = num_classes
        self.extra_label_channels = int(extra_label_channels)
        self.num_scales = num_scales
        for i in range(num_scales):
            self.add_module(f'discriminator_{i}', PatchGANDiscriminator(
                num_classes, num_layers=num_layers, base_channels=base_channels,
                img_channels=img_channels, spectral_norm=spectral_norm, norm_type=norm_type,
                init_type=init_type, init_gain=init_gain,
                extra_label_channels=extra_label_channels, last_stride=last_stride))

    # ---------------------------------------------------------------- model protocol
    def _scales(self):
        return [(f'discriminator_{i}', getattr(self, f'discriminator_{i}'))
                for i in range(self.num_scales)]

    def class_slices(self):
        return [ClassSlice(f'{name}.{s.module}', s.kind, s.start)
                for name, d in self._scales() for s in d.class_slices()]

    def feature_levels(self):
        return tuple(f'{name}.{level}' for name, d in self._scales()
                     for level in d.feature_levels())

    def input_levels(self):
        per_scale = [d.input_levels() for _, d in self._scales()]
        return [[f'{name}.{m}' for (name, _), levels in zip(self._scales(), per_scale)
                 for m in levels[j]] for j in range(len(per_scale[0]))]

    def log_likelihood(self, output, seg, kind='real'):
        """'real': mean over scales of the mean ``log sigmoid`` of the patch logits."""
        if kind != 'real':
            raise ValueError(f"a PatchGAN has no class head: log_likelihood kind must be 'real', "
                             f'got {kind!r}')
        return mean_log_sigmoid([scale[-1] for scale in output])

    @staticmethod
    def downsample(x):
        """Tensor[B, C, H, W] -> Tensor[B, C, ceil(H/2), ceil(W/2)] (official average pooling)."""
        return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)

    def forward(self, img, seg, return_features=False):
        """Score image patches at every scale.

        Args:
            img: Tensor[B, 3, H, W] in [-1, 1].
            seg: Tensor[B, num_classes (+ extra_label_channels), H, W], one-hot label map (then
                the instance edge map).
            return_features: also return the intermediate features by level name.

        Returns:
            list (one per scale, full resolution first) of lists of ``num_layers + 1`` tensors:
            the intermediate features, then the patch logits ``Tensor[B, 1, h, w]`` last; with
            ``return_features`` a tuple ``(list, OrderedDict['discriminator_<i>.model<j>',
            Tensor])``.
        """
        results = self._forward_scales(img, seg)
        if not return_features:
            return results
        feats = OrderedDict()
        for (name, d), out in zip(self._scales(), results):
            feats.update((f'{name}.{level}', f) for level, f in zip(d.feature_levels(), out[:-1]))
        return results, feats

    def _forward_scales(self, img, seg):
        results = []
        for i in range(self.num_scales):
            results.append(getattr(self, f'discriminator_{i}')(img, seg))
            if i + 1 < self.num_scales:
                # Pooling is per channel, so pooling img and seg apart equals pooling their concat.
                img, seg = self.downsample(img), self.downsample(seg)
        return results
