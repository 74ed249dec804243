"""SegmenterLPIPS: an LPIPS-form perceptual distance in a segmenter's backbone features.

LPIPS proper needs ImageNet VGG/AlexNet weights, which cannot be downloaded here. For data sets
with a locally trained segmenter (SynthScenes) catgen offers the same *form* of distance in that
segmenter's features, the uncalibrated ("baseline") variant of Zhang et al. 2018:

    d(x, y) = sum_l mean_{h,w} || f_l(x)_{hw} / |f_l(x)_{hw}| - f_l(y)_{hw} / |f_l(y)_{hw}| ||^2

over the levels ``l`` of the segmenter's ``extract_feat`` (every level, equal weights, the
channel vector at each position unit-normalised). It is a squared Euclidean distance between
per-image embeddings, so it plugs into catgen's intra-cluster protocol
(:func:`~catgen.evaluation.metrics.intra_lpips.intra_lpips`) unchanged. Values are **not**
LPIPS values and compare only with values from the same segmenter checkpoint; they are reported
as ``intra_lpips_<name>`` (e.g. ``intra_lpips_seg-fcn_synthscenes-source``).
"""
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F


class SegmenterLPIPS:
    """Embeddings whose squared distances are the segmenter-feature LPIPS of the module doc.

    Args:
        config: the segmenter's mmseg config path.
        checkpoint: its ``.pth``.
        name: name in metric keys (default ``'seg-' + config stem``).
        levels: indices of ``extract_feat`` outputs to use; None = all.
        batch_size: images per forward.
        device: where the segmenter runs.

    ``embed(imgs)``: ``uint8 Tensor[N, 3, H, W]`` (or float in [-1, 1]) -> ``float32 Tensor[N, D]``
    on the CPU.
    """

    def __init__(self, config, checkpoint, name=None, levels=None, batch_size=32, device='cpu'):
        from catgen.pretrained import MMSegSegmenter
        self.segmenter = MMSegSegmenter(config, checkpoint, device=device)
        self.name = name or f'seg-{Path(os.fspath(config)).stem}'
        self.levels = None if levels is None else [int(i) for i in levels]
        self.batch_size = int(batch_size)
        self.device = torch.device(device)

    @torch.no_grad()
    def _embed_batch(self, imgs):
        if imgs.is_floating_point():
            imgs = ((imgs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        feats = self.segmenter.feature_maps(imgs.to(self.device))
        if self.levels is not None:
            feats = [feats[i] for i in self.levels]
        parts = []
        for f in feats:
            f = f.float()
            f = f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            parts.append(f.flatten(1) / math.sqrt(f.shape[2] * f.shape[3]))
        return torch.cat(parts, dim=1).cpu()

    def embed(self, imgs, progress=None):
        """``Tensor[N, D]`` embeddings of ``imgs`` in batches (``progress.update(n)`` per batch)."""
        out = []
        for start in range(0, len(imgs), self.batch_size):
            chunk = imgs[start:start + self.batch_size]
            out.append(self._embed_batch(chunk))
            if progress is not None:
                progress.update(len(chunk))
        if not out:
            raise ValueError('SegmenterLPIPS.embed got no images.')
        return torch.cat(out)

    def distance(self, x, y):
        """``Tensor[N]``: the distance between ``x[i]`` and ``y[i]``."""
        return (self.embed(x) - self.embed(y)).pow(2).sum(1)


def resize_images(imgs, size):
    """``uint8 Tensor[N, 3, H, W]`` resized (bilinear, antialiased) to ``size`` if it differs."""
    if tuple(imgs.shape[-2:]) == tuple(size):
        return imgs
    x = F.interpolate(imgs.float(), size=tuple(size), mode='bilinear', align_corners=False,
                      antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)
