from .affinity_layer import AffinityLayer
from .spade import SPADE
from .spade_resblock import SPADEResBlock
from .sync_batch_norm import SyncBatchNorm2d, global_batch_stats

__all__ = ['AffinityLayer', 'SPADE', 'SPADEResBlock', 'SyncBatchNorm2d',
           'global_batch_stats']
