from .sample_grid_hook import SampleGridHook
from .save_subset_ids_hook import SaveSubsetIdsHook

__all__ = ['SampleGridHook', 'SaveSubsetIdsHook']
