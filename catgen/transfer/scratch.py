"""Scratch: train the target model from random weights, no source at all (the lower bound).

The same architecture and schedule as the transfer methods, built for the target class count
with its own initialisation; nothing is loaded and everything trains. It is what a config
without ``model.transfer`` does, named so that results tables and configs say it explicitly.
"""
import warnings

from catgen.registry import TRANSFER_STRATEGIES

from .base import TransferStrategy


@TRANSFER_STRATEGIES.register_module()
class Scratch(TransferStrategy):
    """No source: random initialisation, every parameter of G and D trains.

    Args:
        source_checkpoint: ignored (with a warning), so that switching a transfer config to
            ``model.transfer.type='Scratch'`` works without deleting the other keys.
        **kwargs: other :class:`TransferStrategy` arguments, ignored likewise.
    """

    def __init__(self, source_checkpoint=None, **kwargs):
        super().__init__(source_checkpoint=None)
        if source_checkpoint is not None:
            warnings.warn(f'Scratch trains from random weights: source_checkpoint='
                          f'{source_checkpoint!r} is ignored.', UserWarning, stacklevel=2)
        self.ignored_source_checkpoint = source_checkpoint

    def setup(self, synth):
        self.logger.info('Scratch: random initialisation, no source weights; everything trains.')
        super().setup(synth)  # source_checkpoint is None: nothing is loaded

    def set_trainable(self, synth):
        for part in ('generator', 'discriminator'):
            module = getattr(synth, part, None)
            if module is not None:
                module.requires_grad_(True)
