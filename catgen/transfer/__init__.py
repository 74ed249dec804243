"""Transfer strategies: one file per few-shot transfer method, registered in
``catgen.registry.TRANSFER_STRATEGIES`` and chosen in a config with
``model.transfer=dict(type='CAT', ...)``. See docs/transfer.md."""
from .base import TransferStrategy
from .bsa import BSA
from .cat import CAT
from .cat_training_free import CATTrainingFree
from .cdc import CDC
from .dcl import DCL
from .ewc import EWC
from .finetune_all import FinetuneAll
from .freeze_d import FreezeD
from .scratch import Scratch

__all__ = ['TransferStrategy', 'Scratch', 'FinetuneAll', 'FreezeD', 'BSA', 'EWC', 'CDC', 'DCL',
           'CAT', 'CATTrainingFree']
