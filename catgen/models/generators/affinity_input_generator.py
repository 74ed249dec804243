"""CAT's generator: a source generator that reads target label maps through an affinity layer.

Careil et al. (CVPR 2023) keep the source generator whole and put a 1x1 convolution without
bias in front of it: the target one-hot map ``y_t`` (``N_t + 1`` channels) becomes the soft
source map ``y_s = A^T y_t`` (``N_s + 1`` channels), which the source generator reads. This is
the architecture a CAT run ends with, declared in its config::

    generator=dict(type='AffinityInputGenerator', num_classes=12,          # target channels
                   generator=dict(type='OASISGenerator', num_classes=21, ...))  # the source's

so that a CAT checkpoint loads with its config alone (the affinity layer's weights are in the
checkpoint). The CAT strategy writes the estimated matrix into the layer when training starts;
built on its own, the layer holds the uninformed matrix (uniform rows).

State-dict keys: ``affinity.weight`` and ``generator.<the source generator's keys>``.
"""
from collections import OrderedDict

import torch.nn as nn

from catgen.registry import MODELS

from ..layers.affinity_layer import AffinityLayer
from ..protocol import AffinityInput, ClassSlice, TransferableGenerator, check_generator


@MODELS.register_module()
class AffinityInputGenerator(AffinityInput, TransferableGenerator, nn.Module):
    """A generator behind CAT's affinity layer; implements the generator protocol.

    Args:
        generator: config (or module) of the source generator, built with the SOURCE class
            count (``num_classes = N_s + 1``); any :class:`TransferableGenerator`.
        num_classes: channels of the target label map it reads (``N_t + 1``, don't care
            included).

    Model protocol: class slice ``affinity`` (the only layer that reads the target label map);
    feature levels, ``z_dim``, ``output_size`` and the noise (``pixel_noise_std``,
    ``spatial_noise``) are the source generator's; the source
    checkpoint's generator weights load into :meth:`source_network` (the wrapped generator).
    """

    def __init__(self, generator, num_classes):
        super().__init__()
        gen = MODELS.build(generator) if isinstance(generator, dict) else generator
        self.generator = check_generator(gen, 'AffinityInputGenerator.generator')
        self.affinity = AffinityLayer(None, num_target=int(num_classes),
                                      num_source=int(self.generator.num_classes))

    @property
    def num_classes(self):
        return self.affinity.num_target

    @property
    def source_num_classes(self):
        """``N_s + 1``: the channels the wrapped source generator reads."""
        return self.affinity.num_source

    @property
    def z_dim(self):
        return self.generator.z_dim

    @property
    def output_size(self):
        return self.generator.output_size

    @property
    def pixel_noise_std(self):
        return getattr(self.generator, 'pixel_noise_std', 0.0)

    def spatial_noise(self, z, generator=None):
        """The wrapped generator's full 3D noise for ``z`` (see ``OASISGenerator``)."""
        return self.generator.spatial_noise(z, generator=generator)

    def set_affinity(self, matrix):
        self.affinity.set_matrix(matrix)

    def affinity_parameters(self):
        return list(self.affinity.parameters())

    # ---------------------------------------------------------------- model protocol
    def class_slices(self):
        return [ClassSlice('affinity', 'input', 0)]

    def feature_levels(self):
        return self.generator.feature_levels()

    def scale_shift(self):
        return OrderedDict((f'generator.{k}', v) for k, v in self.generator.scale_shift().items())

    def adapter_keys(self):
        return self.generator.adapter_keys()

    def source_network(self):
        return self.generator

    def forward(self, seg, z=None, return_features=False):
        """seg: Tensor[B, N_t + 1, H, W] (target one-hot); z: the wrapped generator's noise
        (Tensor[B, z_dim], its full 3D noise, or None).

        Returns what the source generator returns for ``A^T seg``: Tensor[B, 3, H, W], or
        ``(img, feats)`` with ``return_features``.
        """
        return self.generator(self.affinity(seg), z, return_features=return_features)
