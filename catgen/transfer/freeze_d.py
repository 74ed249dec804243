"""FreezeD (Mo, Cho and Shin, 2020): finetune, but keep the discriminator's early layers frozen.

Reference: "Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs", CVPR-W AI for
Content Creation 2020 (arXiv:2002.10964). The official StyleGAN setting freezes the
high-resolution blocks and trains the three lowest-resolution blocks plus the head.

Here: everything is initialised as in :class:`~catgen.transfer.finetune_all.FinetuneAll` (source
weights, class channels restarted), then the discriminator's first ``k`` input levels (the
model protocol's ``input_levels()``, highest resolution first: OASIS's encoder blocks, a
PatchGAN's layers of every scale) are frozen (``requires_grad=False``) and left out of the
discriminator's optimizer.

One exception, catgen's: a layer of those levels that holds a class slice restarted at loading
(a discriminator that reads the label map, e.g. a PatchGAN whose first conv reads ``[label map,
image]``) stays trainable. Its label channels are random after the restart; frozen, the
discriminator could never learn to read the target label map. Which layers were kept, and why,
is logged. OASIS's discriminator does not read the label map (its class slice is the output
head, not an input level), so there the first ``k`` levels are frozen as published.
"""
from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


def frozen_layer_names(discriminator, k):
    """Module names of the first ``k`` input levels of ``discriminator`` (FreezeD's candidates).

    Args:
        discriminator: a :class:`~catgen.models.protocol.TransferableDiscriminator`.
        k: number of levels, ``0 <= k <= len(discriminator.input_levels())``.

    Returns:
        list[str] of module names, level by level.

    Raises:
        ValueError: k out of range.
    """
    levels = discriminator.input_levels()
    if not 0 <= k <= len(levels):
        raise ValueError(f'FreezeD: num_frozen_blocks={k} but {type(discriminator).__name__} has '
                         f'{len(levels)} input levels ({levels}); use 0..{len(levels)}.')
    return [name for level in levels[:k] for name in level]


def class_slice_holders(discriminator, names, restarted=None):
    """The modules among ``names`` that hold a parameter of a (restarted) class slice.

    Args:
        discriminator: a :class:`~catgen.models.protocol.TransferableDiscriminator`; ``names``
            are module names under it, the class slices' under its ``source_network()``.
        names: candidate module names (e.g. :func:`frozen_layer_names`).
        restarted: module names of the class slices restarted at loading (under
            ``source_network()``, as :attr:`FinetuneAll.reinitialised` records them); None counts
            every class slice.

    Returns:
        ``{module name: [class-slice module names it holds]}`` for the holders, in ``names``'
        order.
    """
    net = discriminator.source_network()
    owner = {}  # id(parameter) -> class-slice module
    for s in net.class_slices():
        if restarted is not None and s.module not in restarted:
            continue
        for p in net.get_submodule(s.module).parameters(recurse=False):
            owner[id(p)] = s.module
    holders = {}
    for name in names:
        held = sorted({owner[id(p)] for p in discriminator.get_submodule(name).parameters()
                       if id(p) in owner})
        if held:
            holders[name] = held
    return holders


@TRANSFER_STRATEGIES.register_module()
class FreezeD(FinetuneAll):
    """Finetune-all with the discriminator's first ``num_frozen_blocks`` layers frozen.

    Layers of those levels that hold a restarted class slice (they read the label map) stay
    trainable; see the module docstring.

    Args:
        num_frozen_blocks: k, the number of highest-resolution discriminator layers to freeze
            (default 3: of OASIS's 6 encoder blocks the 3 high-resolution ones are frozen, the 3
            low-resolution ones, the decoder and the head train).
        **kwargs: see :class:`~catgen.transfer.finetune_all.FinetuneAll`.

    Attributes:
        frozen_modules: the frozen module names (under ``discriminator.``) after setup.
        kept_trainable: ``{module name: [class slices it holds]}``, the layers of the first
            ``k`` levels left trainable because they read the (restarted) label channels.
    """

    def __init__(self, num_frozen_blocks=3, **kwargs):
        super().__init__(**kwargs)
        if int(num_frozen_blocks) != num_frozen_blocks or num_frozen_blocks < 0:
            raise ValueError(f'num_frozen_blocks must be an int >= 0, got {num_frozen_blocks!r}')
        self.num_frozen_blocks = int(num_frozen_blocks)
        self.frozen_modules = []
        self.kept_trainable = {}

    def set_trainable(self, synth):
        super().set_trainable(synth)
        disc = None if synth.discriminator is None else unwrap(synth.discriminator)
        if disc is None:
            raise ValueError('FreezeD needs a discriminator (model.discriminator is None).')
        candidates = frozen_layer_names(disc, self.num_frozen_blocks)
        # restarted class slices; a discriminator not loaded from the source is random throughout
        restarted = self.reinitialised.get('discriminator')
        self.kept_trainable = class_slice_holders(disc, candidates, restarted)
        self.frozen_modules = [n for n in candidates if n not in self.kept_trainable]
        modules = dict(disc.named_modules())
        for name in self.frozen_modules:
            for p in modules[name].parameters():
                p.requires_grad_(False)
        if self.kept_trainable:
            kept = '; '.join(f'{n} (holds {", ".join(s)})' for n, s in self.kept_trainable.items())
            self.logger.info(
                f'FreezeD: kept trainable among the first {self.num_frozen_blocks} discriminator '
                f'levels: {kept}: they read the label map, whose class channels restarted for '
                f'the target classes; frozen, their random label weights could never learn.')
        self.logger.info(f'FreezeD: frozen discriminator layers: '
                         f'{", ".join(self.frozen_modules) or "none"}')

    def optim_params(self, synth, part):
        """The discriminator's optimizer gets only its trainable (unfrozen) parameters."""
        params = super().optim_params(synth, part)
        if part == 'discriminator':
            params = [p for p in params if p.requires_grad]
        return params
