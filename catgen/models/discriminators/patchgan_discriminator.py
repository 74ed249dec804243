"""The PatchGAN discriminator of SPADE (official ``NLayerDiscriminator``, Park et al. 2019)."""
from collections import OrderedDict

import torch
import torch.nn as nn
from torch.nn.utils import spectral_norm as sn

from mmengine.model import BaseModule

from catgen.models.generators.spade_generator import spade_init_cfg
from catgen.registry import MODELS

from ..protocol import ClassSlice, TransferableDiscriminator, mean_log_sigmoid
from ..weight_init import initialize_at_build


def _norm_conv(conv, spectral_norm, norm_type):
    """Wrap ``conv`` as the official ``get_nonspade_norm_layer``: optional spectral norm, then a
    norm layer; where a norm follows, the conv's bias is dropped (it would have no effect)."""
    if spectral_norm:
        conv = sn(conv)
    if norm_type == 'none':
        return conv
    conv.bias = None  # before any norm the bias is meaningless (as official)
    if norm_type == 'instance':
        norm = nn.InstanceNorm2d(conv.out_channels, affine=False)
    elif norm_type == 'batch':
        norm = nn.BatchNorm2d(conv.out_channels, affine=True)
    else:
        raise ValueError(f"norm_type must be 'instance', 'batch' or 'none', got {norm_type!r}")
    return nn.Sequential(conv, norm)


@MODELS.register_module()
class PatchGANDiscriminator(TransferableDiscriminator, BaseModule):
    """SPADE's PatchGAN: ``cat([seg, img])`` -> list of intermediate features, patch logits last.

    ``num_layers`` 4x4 convs (the first three with stride 2 at official settings, the last of them
    stride 1) with widths ``ndf, 2ndf, 4ndf, 8ndf`` (capped at 512), LeakyReLU(0.2), then a 4x4
    conv to 1 channel. The first conv has neither norm nor spectral norm; the middle convs are
    spectral-norm + instance-norm (official 'spectralinstance'); the last conv is plain. Module
    names (``model0`` .. ``model{num_layers}``) follow the official code.

    Args:
        num_classes: channels of the one-hot label map, the don't-care channel included.
        num_layers: official ``n_layers_D`` (4); the output list has ``num_layers + 1`` tensors.
        base_channels: official ``ndf`` (64).
        img_channels: channels of the image (3).
        spectral_norm: spectral norm on the middle convs (official 'spectral...' in norm_D).
        norm_type: norm after the middle convs, 'instance' (official), 'batch' or 'none'.
        init_type: weight initialisation, official 'xavier' (see ``spade_init_cfg``).
        init_gain: gain of that initialisation (official 0.02).
        init_cfg: MMEngine initialisers overriding the official scheme.
        extra_label_channels: channels of ``seg`` after the ``num_classes`` class channels
            (SPADE's instance edge map: 1, official ``compute_D_input_nc``); filled in from the
            data preprocessor.
        last_stride: stride of the last middle conv: 1 in SPADE, 2 in CA2-SIS (whose
            discriminator, 3 layers, downsamples with every middle conv).

    Model protocol: class slice ``model0.0`` (its first ``num_classes`` input channels read the
    label map, the image channels come after); feature levels ``model0`` .. ``model<n-1>``
    (the patch logits ``model<n>`` are the output); input levels ``model<j>``.
    """

    def __init__(self, num_classes, num_layers=4, base_channels=64, img_channels=3,
                 spectral_norm=True, norm_type='instance', init_type='xavier', init_gain=0.02,
                 init_cfg=None, extra_label_channels=0, last_stride=1):
        super().__init__(init_cfg=init_cfg or spade_init_cfg(init_type, init_gain))
        if last_stride not in (1, 2):
            raise ValueError(f'last_stride must be 1 (SPADE) or 2 (CA2-SIS), got {last_stride}')
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        self.num_classes = num_classes
        self.extra_label_channels = int(extra_label_channels)
        self.label_nc = num_classes + self.extra_label_channels
        self.num_layers = num_layers
        kw, padw = 4, 2  # official: padw = ceil((kw - 1) / 2)
        nf = base_channels
        in_nc = self.label_nc + img_channels
        groups = [[nn.Conv2d(in_nc, nf, kw, stride=2, padding=padw), nn.LeakyReLU(0.2)]]
        for n in range(1, num_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = last_stride if n == num_layers - 1 else 2
            conv = nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=padw)
            groups.append([_norm_conv(conv, spectral_norm, norm_type), nn.LeakyReLU(0.2)])
        groups.append([nn.Conv2d(nf, 1, kw, stride=1, padding=padw)])
        for n, group in enumerate(groups):
            self.add_module(f'model{n}', nn.Sequential(*group))
        initialize_at_build(self)

    # ---------------------------------------------------------------- model protocol
    def class_slices(self):
        return [ClassSlice('model0.0', 'input', 0)]

    def feature_levels(self):
        return tuple(f'model{n}' for n in range(self.num_layers))

    def input_levels(self):
        return [[f'model{n}'] for n in range(self.num_layers + 1)]

    def log_likelihood(self, output, seg, kind='real'):
        """'real': mean ``log sigmoid`` of the patch logits (the last tensor of ``output``)."""
        if kind != 'real':
            raise ValueError(f"a PatchGAN has no class head: log_likelihood kind must be 'real', "
                             f'got {kind!r}')
        return mean_log_sigmoid([output[-1]])

    def forward_input(self, x):
        """x: Tensor[B, label_nc + 3, H, W] (seg, then image) -> num_layers + 1 tensors."""
        feats = []
        for n in range(self.num_layers + 1):
            x = getattr(self, f'model{n}')(x)
            feats.append(x)
        return feats

    def forward(self, img, seg, return_features=False):
        """Score image patches given the label map.

        Args:
            img: Tensor[B, 3, H, W] in [-1, 1].
            seg: Tensor[B, num_classes (+ extra_label_channels), H, W], one-hot label map (then
                the instance edge map).
            return_features: also return the intermediate features by level name.

        Returns:
            list of ``num_layers + 1`` tensors: the intermediate features (after each LeakyReLU)
            then the patch logits ``Tensor[B, 1, h, w]`` last (what SPADE's losses read); with
            ``return_features`` a tuple ``(list, OrderedDict[f'model{j}', Tensor])``.
        """
        if seg is None or seg.shape[1] != self.label_nc:
            got = None if seg is None else seg.shape[1]
            extra = (f' + {self.extra_label_channels} extra (instance edges)'
                     if self.extra_label_channels else '')
            raise ValueError(f'seg must have num_classes={self.num_classes}{extra} channels, '
                             f'got {got}')
        out = self.forward_input(torch.cat([seg, img], dim=1))  # official order: seg, image
        if return_features:
            return out, OrderedDict(zip(self.feature_levels(), out[:-1]))
        return out
