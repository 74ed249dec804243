"""SegmenterFeatureExtractor: globally pooled backbone features of an mmsegmentation segmentor.

For data sets without Inception weights offline (SynthScenes), FID / KID can be computed in the
feature space of a segmenter trained on the target domain (e.g.
``work_dirs/segmenters/fcn_synthscenes-target/``). Such numbers are **not** the standard FID:
they are reported as ``fid_<name>`` / ``kid_<name>`` (e.g. ``fid_seg-fcn_synthscenes-target``),
and are only comparable with numbers computed with the same segmenter checkpoint.
"""
import os
from pathlib import Path

import torch.nn.functional as F

from catgen.registry import MODELS

from .base_feature_extractor import BaseFeatureExtractor, check_name

__all__ = ['SegmenterFeatureExtractor']


@MODELS.register_module()
class SegmenterFeatureExtractor(BaseFeatureExtractor):
    """Global-average-pooled deepest feature of an mmseg segmentor's backbone (+ neck).

    The segmentor is catgen's frozen :class:`~catgen.pretrained.MMSegSegmenter` (the same
    wrapper the affinity estimators and the mIoU metric use): built from its config and a local
    checkpoint (weights through ``torch.load(weights_only=True)``), eval mode, no gradients.
    Images go through the segmentor's own ``data_preprocessor`` (mean/std, ``bgr_to_rgb``) as
    mmseg's ``LoadImageFromFile`` would give them (``input_order='bgr'``), then ``extract_feat``
    (backbone, then neck if any); of its outputs, the one with the lowest spatial resolution
    (the last of those if several: the deepest, e.g. a UNet's bottleneck or a ResNet's last
    stage) is averaged over space.

    Args:
        config: path of the mmseg config (``.py``), or a config dict.
        checkpoint: path of the ``.pth`` trained with it.
        name: the extractor's name, used in metric keys (``fid_<name>``) and the cache key;
            default ``'seg-' + <config file stem>`` (e.g. ``seg-fcn_synthscenes-target``); a
            dict config needs an explicit name.
        feature_index: which output of ``extract_feat`` to pool: ``'deepest'`` (default, see
            above) or an int index into the outputs.
        input_order: ``'bgr'`` (what mmseg's ``LoadImageFromFile`` feeds the data preprocessor;
            the default) or ``'rgb'``.
        resize: None (images as given) or ``(h, w)``: bilinear resize before the segmentor
            (its input must be divisible by the backbone's downsampling rate).
        device: where the segmentor goes.

    Input ``uint8 Tensor[B, 3, H, W]`` RGB -> ``float32 Tensor[B, C]`` (C = channels of the
    chosen feature map).
    """

    def __init__(self, config, checkpoint, name=None, feature_index='deepest',
                 input_order='bgr', resize=None, device='cpu'):
        super().__init__()
        from catgen.pretrained import MMSegSegmenter
        if name is None:
            if not isinstance(config, (str, os.PathLike)):
                raise ValueError('SegmenterFeatureExtractor with a config dict needs name=... '
                                 '(it names the metric keys, e.g. fid_<name>).')
            name = f'seg-{Path(config).stem}'
        self.name = check_name(name)
        self.resize = None if resize is None else tuple(int(s) for s in resize)
        self.segmenter = MMSegSegmenter(config, checkpoint, input_order=input_order,
                                        feature_index=feature_index, device='cpu')
        self.input_order = input_order
        self.feature_index = feature_index
        self.config = str(config) if isinstance(config, (str, os.PathLike)) else None
        self.checkpoint = str(checkpoint)
        self.to(device)
        self.feature_dim = None  # known after the first batch (channels of the chosen map)

    @property
    def model(self):
        """The mmseg segmentor inside the wrapper."""
        return self.segmenter.model

    def features(self, img):
        """img: ``uint8 Tensor[B, 3, H, W]`` RGB -> ``float32 Tensor[B, C]``."""
        x = img
        if self.resize is not None and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x.float(), size=self.resize, mode='bilinear', align_corners=False)
        out = self.segmenter.feature_map(x).float().mean(dim=(-2, -1))
        self.feature_dim = out.shape[1]
        return out

    def cache_key(self):
        return {'class': type(self).__name__, 'name': self.name,
                'segmenter': self.segmenter.cache_key(),
                'resize': list(self.resize) if self.resize else None, 'pool': 'mean'}
