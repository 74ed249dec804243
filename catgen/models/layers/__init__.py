from .spade import SPADE
from .spade_resblock import SPADEResBlock

__all__ = ['SPADE', 'SPADEResBlock']
