"""Frozen pretrained networks, one wrapper per kind, shared by affinity estimation and evaluation.

Each wrapper (registered in ``catgen.registry.PRETRAINED``) loads from local files only, fails
at once naming the missing file and where to put it, stays in eval mode without gradients, takes
``uint8 Tensor[B, 3, H, W]`` RGB images and has a content-hash ``cache_key()``:

- :class:`MMSegSegmenter` (``type='mmseg'``): class logits and backbone features of an
  mmsegmentation segmentor;
- :class:`OASISDiscriminatorSegmenter` (``type='oasis_discriminator'``): a trained OASIS
  discriminator as source segmenter (real-class logits) and feature extractor;
- :class:`TimmBackbone` (``type='timm'``): feature maps of a timm model.

:func:`build_pretrained` builds one from a config spec dict (or wraps an ``nn.Module``);
:func:`pretrained_cache_key` gives its cache key without building it. See docs/affinity.md.
"""
from .base import FrozenPretrained, check_file
from .builder import SHORT_TYPES, build_pretrained, pretrained_cache_key, resolve_spec
from .mmseg_segmenter import MMSegSegmenter
from .module_adapter import ModuleAdapter, module_state_key
from .oasis_discriminator import OASISDiscriminatorSegmenter
from .timm_backbone import TimmBackbone

__all__ = ['FrozenPretrained', 'check_file', 'build_pretrained', 'pretrained_cache_key',
           'resolve_spec', 'SHORT_TYPES', 'MMSegSegmenter', 'OASISDiscriminatorSegmenter',
           'TimmBackbone', 'ModuleAdapter', 'module_state_key']
