"""FrozenPretrained: the base of catgen's wrappers around frozen pretrained networks.

A wrapper loads a network from local files only (nothing is downloaded), keeps it in eval mode
with ``requires_grad=False`` for good, and exposes:

- ``forward(img)`` on ``uint8 Tensor[B, 3, H, W]`` RGB images (0..255), as data sets and
  synthesizers give them; each wrapper does its own resizing / normalisation;
- :meth:`FrozenPretrained.cache_key`: a json-able dict of everything that determines its outputs
  (class, settings, **content** hashes of the weight and config files), stable across
  processes and file moves, for on-disk caches (:class:`catgen.utils.cache.DiskCache`);
- :meth:`FrozenPretrained.key_from_args`: the same key computed from the constructor arguments
  without building the network, so that a cache hit never loads it;
- ``describe()``: a short json-able description for ``meta`` records.
"""
import os
from pathlib import Path

import torch
from torch import nn

from catgen.utils.cache import FileRef, canonical

__all__ = ['FrozenPretrained', 'check_file', 'file_or_text']


def check_file(path, what, hint):
    """``Path(path)`` if it is a file, else a :class:`FileNotFoundError` naming the file, what it
    is and what to do (``hint``). ``zoo://NAME`` is the model-zoo file (checksum verified)."""
    if path is None:
        raise FileNotFoundError(f'No {what} given (None). {hint}')
    from catgen.model_zoo.zoo import resolve_checkpoint
    p = Path(resolve_checkpoint(path)).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f'{what} not found: {p}. {hint}')
    return p


def file_or_text(value):
    """A key part for a config: :class:`FileRef` (content hash) for an existing file path, else
    its text (a config dict, an in-memory Config)."""
    if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
        return FileRef(value)
    return str(value)



def module_device(module):
    """The device of ``module``'s first parameter (or buffer); CPU for a module without any."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device('cpu')

class FrozenPretrained(nn.Module):
    """Base class: eval mode forever, no gradients, a content-hash cache key.

    Subclasses call ``super().__init__()``, build their network, then :meth:`freeze`; they set
    :attr:`key_args` (the constructor arguments that change outputs, json-able or
    :class:`FileRef`) and implement ``forward``.
    """

    #: the registered name, recorded in cache keys and ``describe()``.
    kind = None

    def __init__(self):
        super().__init__()
        self.key_args = {}

    # ------------------------------------------------------------------ frozen
    def freeze(self):
        """``eval()`` and ``requires_grad_(False)`` on every parameter; returns self."""
        super().train(False)
        self.requires_grad_(False)
        return self

    def train(self, mode=True):
        """Pretrained wrappers stay in eval mode (BatchNorm statistics, no dropout)."""
        return super().train(False)

    @property
    def device(self):
        return module_device(self)

    # ------------------------------------------------------------------ keys
    @classmethod
    def key_from_args(cls, **args):
        """The json-able cache key of ``cls(**args)`` without building it: content hashes of the
        files (see :func:`catgen.utils.cache.canonical`) and the settings that change outputs.

        Raises:
            FileNotFoundError: a weight/config file is missing (names it).
        """
        return canonical({'type': cls.kind or cls.__name__, **cls._key_parts(**args)})

    @classmethod
    def _key_parts(cls, **args):
        """Subclasses: the key parts of these constructor arguments (files as FileRef)."""
        raise NotImplementedError

    def cache_key(self):
        """The json-able cache key of this instance (same as :meth:`key_from_args` of its
        constructor arguments)."""
        return type(self).key_from_args(**self.key_args)

    def describe(self):
        """A short json-able description (type and file paths) for ``meta`` records."""
        return {'type': self.kind or type(self).__name__,
                **{k: (str(v) if isinstance(v, (Path, os.PathLike)) else v)
                   for k, v in self.key_args.items()
                   if isinstance(v, (str, int, float, bool, type(None), list, tuple,
                                     os.PathLike))}}
