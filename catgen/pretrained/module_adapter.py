"""ModuleAdapter: an injected ``nn.Module`` or callable behind the pretrained-wrapper interface.

The escape hatch for tests and custom models: a callable that takes ``float Tensor[B, 3, H, W]``
RGB in ``[-1, 1]`` and returns ``Tensor[B, K, h, w]`` (class logits, or features) is wrapped so
that it takes ``uint8`` images like every other wrapper. It is not registered (it is never built
from a config); :func:`catgen.pretrained.build_pretrained` wraps modules and callables in it.
"""
import hashlib

import torch

__all__ = ['ModuleAdapter', 'module_state_key']


def module_state_key(module):
    """Cache key of an injected module: its class and a sha256 of its state dict (parameters
    and buffers: names, shapes, bytes); None for a plain callable (not cacheable)."""
    if not isinstance(module, torch.nn.Module):
        return None
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    cls = type(module)
    return {'module': f'{cls.__module__}.{cls.__qualname__}', 'state_sha256': h.hexdigest()}


class ModuleAdapter:
    """``uint8`` images in, the wrapped callable's output out (no gradients).

    Args:
        fn: an ``nn.Module`` (put in eval mode) or any callable ``float Tensor[B, 3, H, W]`` in
            ``[-1, 1]`` -> ``Tensor[B, K, h, w]``.
        device: where the images go before the call.

    Attributes:
        classes: ``fn.classes`` if it has that attribute (names of its K outputs), else None.
    """

    kind = 'module'

    def __init__(self, fn, device='cpu'):
        if not callable(fn):
            raise TypeError(f'ModuleAdapter needs a callable, got {type(fn).__name__}.')
        self.fn = fn
        self.device = device
        self.classes = getattr(fn, 'classes', None)
        if isinstance(fn, torch.nn.Module):
            fn.eval()

    @torch.no_grad()
    def __call__(self, img):
        """img: ``uint8 Tensor[B, 3, H, W]`` RGB -> ``fn(img / 127.5 - 1)``."""
        return self.fn(img.to(self.device).float() / 127.5 - 1.0)

    forward = __call__

    def feature_map(self, img):
        """Same as calling it (the backbone interface)."""
        return self(img)

    def cache_key(self):
        """:func:`module_state_key` of the callable (None: not cacheable)."""
        return module_state_key(self.fn)

    def describe(self):
        return {'type': 'module', 'class': type(self.fn).__qualname__}
