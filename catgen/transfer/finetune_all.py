"""Finetune-all: every weight starts from the source model; the class channels restart.

The standard transfer baseline: the target model (built by the config for the TARGET class
count) is initialised from the source checkpoint. The class slices of the model protocol
(:mod:`catgen.models.protocol`: the layers that read the label map, a discriminator's class
head) keep their fresh initialisation in their class channels; their other channels (noise or
image inputs, OASIS's "fake" output row, biases of input layers) come from the source.
Everything then trains with the config's optimizers. Which layers restarted is logged.
"""
from catgen.registry import TRANSFER_STRATEGIES

from .base import TransferStrategy, check_source_checkpoint


@TRANSFER_STRATEGIES.register_module()
class FinetuneAll(TransferStrategy):
    """Initialise G and D from the source; restart the class channels; train all.

    Args:
        source_checkpoint: the source synthesizer's checkpoint (required).
        reinit_class_layers: True (default) restarts the class channels even when the source
            and target class counts happen to be equal (the label spaces differ); False copies
            them when their shapes match.
        source_generator_prefix, load_discriminator: see :class:`TransferStrategy`.

    Attributes:
        reinitialised: ``{'generator': [module names], 'discriminator': [...]}`` after setup.
    """

    def __init__(self, source_checkpoint=None, reinit_class_layers=True,
                 source_generator_prefix='generator_ema.module.', load_discriminator=True):
        super().__init__(source_checkpoint=source_checkpoint,
                         source_generator_prefix=source_generator_prefix,
                         load_discriminator=load_discriminator)
        self.reinit_class_layers = reinit_class_layers
        check_source_checkpoint(self)  # a missing file fails here, before any long work

    def setup(self, synth):
        check_source_checkpoint(self)
        super().setup(synth)

    def init_class_slice(self, part, class_slice, kind, source, own, num_classes):
        if not self.reinit_class_layers and source.shape == own.shape:
            return source.detach().clone().to(own)
        return super().init_class_slice(part, class_slice, kind, source, own, num_classes)
