"""FreezeD (Mo, Cho and Shin, 2020): finetune, but keep the discriminator's early layers frozen.

Reference: "Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs", CVPR-W AI for
Content Creation 2020 (arXiv:2002.10964). The official StyleGAN setting freezes the
high-resolution blocks and trains the three lowest-resolution blocks plus the head.

Here: everything is initialised as in :class:`~catgen.transfer.finetune_all.FinetuneAll` (source
weights, class channels restarted), then the discriminator's first ``k`` input levels (the
model protocol's ``input_levels()``, highest resolution first: OASIS's encoder blocks
``body_down.<i>``, a PatchGAN's layers ``model<j>`` of every scale) are frozen
(``requires_grad=False``) and left out of the discriminator's optimizer.
"""
from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


def frozen_layer_names(discriminator, k):
    """Module names of the first ``k`` input levels of ``discriminator`` (FreezeD's frozen set).

    Args:
        discriminator: a :class:`~catgen.models.protocol.TransferableDiscriminator`.
        k: number of levels, ``0 <= k <= len(discriminator.input_levels())``.

    Returns:
        list[str] of module names.

    Raises:
        ValueError: k out of range.
    """
    levels = discriminator.input_levels()
    if not 0 <= k <= len(levels):
        raise ValueError(f'FreezeD: num_frozen_blocks={k} but {type(discriminator).__name__} has '
                         f'{len(levels)} input levels ({levels}); use 0..{len(levels)}.')
    return [name for level in levels[:k] for name in level]


@TRANSFER_STRATEGIES.register_module()
class FreezeD(FinetuneAll):
    """Finetune-all with the discriminator's first ``num_frozen_blocks`` layers frozen.

    Args:
        num_frozen_blocks: k, the number of highest-resolution discriminator layers to freeze
            (default 3: of OASIS's 6 encoder blocks the 3 high-resolution ones are frozen, the 3
            low-resolution ones, the decoder and the head train).
        **kwargs: see :class:`~catgen.transfer.finetune_all.FinetuneAll`.

    Attributes:
        frozen_modules: the frozen module names (under ``discriminator.``) after setup.
    """

    def __init__(self, num_frozen_blocks=3, **kwargs):
        super().__init__(**kwargs)
        if int(num_frozen_blocks) != num_frozen_blocks or num_frozen_blocks < 0:
            raise ValueError(f'num_frozen_blocks must be an int >= 0, got {num_frozen_blocks!r}')
        self.num_frozen_blocks = int(num_frozen_blocks)
        self.frozen_modules = []

    def set_trainable(self, synth):
        super().set_trainable(synth)
        disc = None if synth.discriminator is None else unwrap(synth.discriminator)
        if disc is None:
            raise ValueError('FreezeD needs a discriminator (model.discriminator is None).')
        self.frozen_modules = frozen_layer_names(disc, self.num_frozen_blocks)
        modules = dict(disc.named_modules())
        for name in self.frozen_modules:
            for p in modules[name].parameters():
                p.requires_grad_(False)
        self.logger.info(f'FreezeD: frozen discriminator layers: '
                         f'{", ".join(self.frozen_modules) or "none"}')

    def optim_params(self, synth, part):
        """The discriminator's optimizer gets only its trainable (unfrozen) parameters."""
        params = super().optim_params(synth, part)
        if part == 'discriminator':
            params = [p for p in params if p.requires_grad]
        return params
