"""Building pretrained wrappers from the spec dicts that configs hold.

A spec is ``dict(type=<registered name or short name>, **constructor arguments)``; the short
names that configs have always used are kept:

====================== ================================ ========================================
short ``type``         wrapper (``catgen.registry.       arguments
                       PRETRAINED``)
====================== ================================ ========================================
``'mmseg'``            :class:`MMSegSegmenter`          ``config, checkpoint[, input_order,
                                                        feature_index (alias index)]``
``'oasis_             :class:`OASISDiscriminator-       ``config, checkpoint[, prefix,
discriminator'``       Segmenter`                       dontcare_index, layers]``
``'timm'``             :class:`TimmBackbone`            ``model_name, checkpoint[, input_size,
                                                        mean, std]``
====================== ================================ ========================================

An ``nn.Module`` or callable is wrapped in :class:`ModuleAdapter`; an already built wrapper is
returned as it is.
"""
from catgen.registry import PRETRAINED

from .module_adapter import ModuleAdapter

__all__ = ['build_pretrained', 'pretrained_cache_key', 'resolve_spec', 'SHORT_TYPES']

#: the short ``type`` names of configs -> registered wrapper names.
SHORT_TYPES = {'mmseg': 'MMSegSegmenter', 'oasis_discriminator': 'OASISDiscriminatorSegmenter',
               'timm': 'TimmBackbone'}
#: argument names older configs use -> the wrappers' names.
ARG_ALIASES = {'index': 'feature_index'}


def _registered_names():
    import catgen.pretrained  # noqa: F401  (registers the wrappers)
    return sorted(PRETRAINED.module_dict)


def resolve_spec(spec, what='model'):
    """``(wrapper class, constructor kwargs)`` of a spec dict (short names and argument aliases
    resolved).

    Raises:
        ValueError: an unknown ``type`` (lists the known ones).
    """
    spec = dict(spec)
    kind = spec.pop('type', None)
    name = SHORT_TYPES.get(kind, kind)
    known = list(SHORT_TYPES) + _registered_names()
    if not isinstance(name, str) or name not in PRETRAINED.module_dict:
        raise ValueError(f'{what} type {kind!r} is unknown; use one of {known} (or pass an '
                         f'nn.Module / callable).')
    kwargs = {ARG_ALIASES.get(k, k): v for k, v in spec.items()}
    kwargs = {k: (tuple(v) if isinstance(v, list) and k == 'layers' else v)
              for k, v in kwargs.items()}
    return PRETRAINED.get(name), kwargs


def build_pretrained(spec, device='cpu', what='model'):
    """A frozen pretrained wrapper from a spec dict, a module / callable, or a wrapper.

    Args:
        spec: ``dict(type=..., ...)`` (see the module docstring), an ``nn.Module`` / callable
            (wrapped in :class:`ModuleAdapter`), or a built wrapper (returned as is).
        device: where the network goes (a spec's own ``device`` wins).
        what: what it is for (``'segmenter'``, ``'backbone'``), for error messages.

    Returns:
        the wrapper: ``forward(uint8 Tensor[B, 3, H, W])``, ``feature_map``, ``cache_key()``,
        ``classes`` (segmenters).

    Raises:
        ValueError: no spec, or an unknown type; FileNotFoundError: missing files (names them).
    """
    from .base import FrozenPretrained
    if spec is None:
        raise ValueError(f"No {what}: pass {what}=dict(type='mmseg', config=..., checkpoint=...), "
                         f"dict(type='oasis_discriminator', config=..., checkpoint=...), "
                         f"dict(type='timm', model_name=..., checkpoint=<local file>), or an "
                         f"nn.Module / callable.")
    if isinstance(spec, (FrozenPretrained, ModuleAdapter)):
        return spec
    if isinstance(spec, dict):
        cls, kwargs = resolve_spec(spec, what)
        kwargs.setdefault('device', device)
        return cls(**kwargs)
    if callable(spec):
        return ModuleAdapter(spec, device)
    raise TypeError(f'{what} must be a dict with type in {list(SHORT_TYPES)} (or a registered '
                    f'wrapper name), an nn.Module or a callable; got {type(spec).__name__}.')


def pretrained_cache_key(spec):
    """The json-able cache key of what :func:`build_pretrained` would build, WITHOUT building
    it (content hashes of its files). None when it cannot be known without building: a plain
    callable, an unknown type, or missing files (building then raises the helpful error)."""
    from .base import FrozenPretrained
    if isinstance(spec, (FrozenPretrained, ModuleAdapter)):
        return spec.cache_key()
    if isinstance(spec, dict):
        try:
            cls, kwargs = resolve_spec(spec)
            return cls.key_from_args(**kwargs)
        except (ValueError, FileNotFoundError, TypeError):
            return None
    from .module_adapter import module_state_key
    return module_state_key(spec)
