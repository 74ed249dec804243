"""Transforms on catgen's results dict (see docs/conventions.md), registered in
``catgen.registry.TRANSFORMS``."""
from .formatting import PackSISInputs
from .loading import LoadSISAnnotations, LoadSISImageFromFile
from .processing import CenterCrop, RandomCrop, RandomFlip, Resize
from .scribbles import SimulateScribbles

__all__ = ['LoadSISImageFromFile', 'LoadSISAnnotations', 'Resize', 'RandomCrop', 'CenterCrop',
           'RandomFlip', 'SimulateScribbles', 'PackSISInputs']
