"""BaseFeatureExtractor: images -> one feature vector per image, for FID / KID.

A feature extractor is an ``nn.Module`` registered in ``catgen.registry.MODELS``. It takes the
images as the synthesizer's predict mode gives them (``uint8 Tensor[B, 3, H, W]``, RGB, 0..255)
and does its own resizing and normalisation, so that generated and real images always go through
exactly the same preprocessing.

Two attributes identify it:

- ``name`` (str): used in the metric output keys and in the real-feature cache hash. Only the
  standard FID network (pytorch-fid's Inception-v3 with the official
  ``pt_inception-2015-12-05`` weights) is called ``'inception'``, and only its metrics are
  reported under the bare keys ``fid`` / ``kid``; every other extractor's metrics are
  ``fid_<name>`` / ``kid_<name>`` (see :meth:`BaseFeatureExtractor.metric_key`), so that a
  number computed with another network is never mistaken for the standard FID.
- :meth:`BaseFeatureExtractor.cache_key`: a JSON-able dict of everything that determines the
  features (class, settings, content hashes of weight files); the real-statistics cache
  (:mod:`catgen.evaluation.real_stats`) hashes it.
"""
import re
from pathlib import Path

import torch
from torch import nn

from catgen.utils.cache import file_sha256  # noqa: F401  (kept importable from here)

__all__ = ['BaseFeatureExtractor', 'STANDARD_NAME', 'file_sha256', 'check_name']

#: the ``name`` of the standard FID network (its metrics get the bare keys ``fid``, ``kid``).
STANDARD_NAME = 'inception'

_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


def check_name(name):
    """Return ``name`` if it is a valid extractor name (letters, digits, ``._-``), else raise."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f'A feature extractor name must be a non-empty string of letters, '
                         f'digits, ".", "_" and "-" (it becomes part of metric keys such as '
                         f'"fid_<name>" and of cache file names); got {name!r}.')
    return name


class BaseFeatureExtractor(nn.Module):
    """Base class of FID / KID feature extractors.

    Subclasses set ``self.name`` (see :func:`check_name`) and ``self.feature_dim`` and implement
    :meth:`features` and :meth:`cache_key`. The module is kept in eval mode without gradients:
    :meth:`train` is a no-op apart from returning ``self``.

    Call ``extractor(img)`` with ``img: uint8 Tensor[B, 3, H, W]`` (RGB, 0..255) on the
    extractor's device; it returns ``float32 Tensor[B, feature_dim]``.
    """

    name = None
    feature_dim = None

    @property
    def is_standard(self):
        """True only for the standard FID network (``name == 'inception'``)."""
        return self.name == STANDARD_NAME

    def metric_key(self, metric):
        """The output key of ``metric`` ('fid', 'kid', ...) computed with this extractor:
        ``metric`` for the standard FID network, else ``f'{metric}_{self.name}'``."""
        return metric if self.is_standard else f'{metric}_{self.name}'

    @property
    def device(self):
        from catgen.pretrained.base import module_device
        return module_device(self)

    def train(self, mode=True):
        """Feature extractors stay in eval mode (BatchNorm statistics, no dropout)."""
        return super().train(False)

    def features(self, img):
        """``uint8 Tensor[B, 3, H, W]`` -> ``float32 Tensor[B, feature_dim]``; subclasses."""
        raise NotImplementedError

    def cache_key(self):
        """A JSON-able dict of everything that determines the features; subclasses."""
        raise NotImplementedError

    @torch.inference_mode()
    def forward(self, img):
        """img: ``uint8 Tensor[B, 3, H, W]`` RGB in 0..255 -> ``float32 Tensor[B, D]``."""
        if not isinstance(img, torch.Tensor) or img.dtype != torch.uint8 or img.dim() != 4 \
                or img.shape[1] != 3:
            got = (f'{img.dtype} tensor of shape {tuple(img.shape)}'
                   if isinstance(img, torch.Tensor) else type(img).__name__)
            raise ValueError(f'{type(self).__name__} expects uint8 Tensor[B, 3, H, W] (RGB, '
                             f'0..255, as the synthesizer\'s fake_img / gt_img), got {got}. '
                             f'Convert images in [-1, 1] with '
                             f'catgen.models.synthesizers.base_synthesizer.to_uint8.')
        out = self.features(img.to(self.device))
        return out.float().reshape(img.shape[0], -1)


def resolve_path(path):
    """``Path`` of ``path`` with ``~`` expanded (for messages and hashing)."""
    return Path(path).expanduser()
