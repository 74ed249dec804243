"""catgen: few-shot semantic image synthesis by class affinity transfer.

``import catgen`` stays cheap: it imports neither torch nor any OpenMMLab package. Sub-packages
(``catgen.models``, ``catgen.datasets`` ...) are imported on first attribute access, and the
registries in :mod:`catgen.registry` import them lazily through their ``locations``.
"""
import importlib

from .version import __version__

_SUBPACKAGES = ('affinity', 'apis', 'benchmark', 'datasets', 'engine', 'evaluation', 'models',
                'pretrained', 'registry', 'transfer', 'utils', 'visualization')

__all__ = ['__version__', *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
