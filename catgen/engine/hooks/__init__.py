from .adaptation_curve_hook import AdaptationCurveHook
from .atomic_checkpoint_hook import AtomicCheckpointHook, save_checkpoint_atomic
from .ema_norm_stats_hook import EMANormStatsHook
from .prior_inversion_hook import PriorInversionHook
from .proxy_mask_hook import ProxyMaskHook
from .rng_state_hook import RNGStateHook, get_rng_state, set_rng_state
from .sample_grid_hook import SampleGridHook
from .save_subset_ids_hook import SaveSubsetIdsHook
from .transfer_hook import TransferHook

__all__ = ['AdaptationCurveHook', 'AtomicCheckpointHook', 'EMANormStatsHook', 'PriorInversionHook',
           'ProxyMaskHook', 'RNGStateHook',
           'SampleGridHook', 'SaveSubsetIdsHook', 'TransferHook', 'get_rng_state',
           'save_checkpoint_atomic', 'set_rng_state']
