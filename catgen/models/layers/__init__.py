from .affinity_layer import AffinityLayer
from .ir_se_block import IRSEBlock, SqueezeExcite
from .spade import SPADE
from .spade_resblock import SPADEResBlock
from .sync_batch_norm import SyncBatchNorm2d, global_batch_stats

__all__ = ['AffinityLayer', 'IRSEBlock', 'SqueezeExcite', 'SPADE', 'SPADEResBlock',
           'SyncBatchNorm2d',
           'global_batch_stats']
