from .affinity_layer import AffinityLayer
from .spade import SPADE
from .spade_resblock import SPADEResBlock

__all__ = ['AffinityLayer', 'SPADE', 'SPADEResBlock']
