"""SegmenterFeatureExtractor: globally pooled backbone features of an mmsegmentation segmentor.

For data sets without Inception weights offline (SynthScenes), FID / KID can be computed in the
feature space of a segmenter trained on the target domain (e.g.
``work_dirs/segmenters/fcn_synthscenes-target/``). Such numbers are **not** the standard FID:
they are reported as ``fid_<name>`` / ``kid_<name>`` (e.g. ``fid_seg-fcn_synthscenes-target``),
and are only comparable with numbers computed with the same segmenter checkpoint.
"""
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from catgen.registry import MODELS

from .base_feature_extractor import BaseFeatureExtractor, check_name, file_sha256

__all__ = ['SegmenterFeatureExtractor']


@MODELS.register_module()
class SegmenterFeatureExtractor(BaseFeatureExtractor):
    """Global-average-pooled deepest feature of an mmseg segmentor's backbone (+ neck).

    The segmentor is built from its config and a local checkpoint with
    :func:`catgen.utils.setup_env.init_mmseg_model` (MMEngine's default scope guarded, weights
    through ``torch.load(weights_only=True)``). Images go through the segmentor's own
    ``data_preprocessor`` (mean/std, ``bgr_to_rgb``) as mmseg's ``LoadImageFromFile`` would give
    them (``input_order='bgr'``), then ``extract_feat`` (backbone, then neck if any); of its
    outputs, the one with the lowest spatial resolution (the last of those if several: the
    deepest, e.g. a UNet's bottleneck or a ResNet's last stage) is averaged over space.

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
        from catgen.utils.setup_env import init_mmseg_model
        if name is None:
            if not isinstance(config, (str, os.PathLike)):
                raise ValueError('SegmenterFeatureExtractor with a config dict needs name=... '
                                 '(it names the metric keys, e.g. fid_<name>).')
            name = f'seg-{Path(config).stem}'
        self.name = check_name(name)
        if input_order not in ('bgr', 'rgb'):
            raise ValueError(f"input_order must be 'bgr' (mmseg's LoadImageFromFile, default) or "
                             f"'rgb', got {input_order!r}")
        if not (feature_index == 'deepest' or isinstance(feature_index, int)):
            raise ValueError(f"feature_index must be 'deepest' or an int index into the "
                             f"backbone/neck outputs, got {feature_index!r}")
        self.input_order = input_order
        self.feature_index = feature_index
        self.resize = None if resize is None else tuple(int(s) for s in resize)
        self.model = init_mmseg_model(config, checkpoint, device='cpu')
        self.model.requires_grad_(False)
        self.model.eval()
        if isinstance(config, (str, os.PathLike)):
            config_key = {'config_sha256': file_sha256(config)}
        else:
            config_key = {'config': str(dict(config))}
        self._key = {'class': type(self).__name__, 'name': self.name,
                     'checkpoint_sha256': file_sha256(checkpoint), **config_key,
                     'feature_index': feature_index, 'input_order': input_order,
                     'resize': list(self.resize) if self.resize else None, 'pool': 'mean'}
        self.config = str(config) if isinstance(config, (str, os.PathLike)) else None
        self.checkpoint = str(checkpoint)
        self.to(device)
        self.feature_dim = None  # known after the first batch (channels of the chosen map)

    def _select(self, feats):
        feats = [feats] if isinstance(feats, torch.Tensor) else list(feats)
        if self.feature_index != 'deepest':
            try:
                return feats[self.feature_index]
            except IndexError:
                raise IndexError(f'feature_index={self.feature_index} but the segmentor\'s '
                                 f'extract_feat gives {len(feats)} outputs') from None
        areas = [f.shape[-2] * f.shape[-1] for f in feats]
        smallest = min(areas)
        return feats[max(i for i, a in enumerate(areas) if a == smallest)]

    def features(self, img):
        """img: ``uint8 Tensor[B, 3, H, W]`` RGB -> ``float32 Tensor[B, C]``."""
        x = img
        if self.resize is not None and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x.float(), size=self.resize, mode='bilinear', align_corners=False)
        if self.input_order == 'bgr':
            x = x[:, [2, 1, 0]]
        from mmseg.structures import SegDataSample
        h, w = x.shape[-2:]
        samples = [SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                               pad_shape=(h, w))) for _ in range(len(x))]
        data = self.model.data_preprocessor(dict(inputs=list(x), data_samples=samples), False)
        fmap = self._select(self.model.extract_feat(data['inputs']))
        out = fmap.float().mean(dim=(-2, -1))
        self.feature_dim = out.shape[1]
        return out

    def cache_key(self):
        return dict(self._key)
