"""The few points where few-shot transfer methods differ, in one small base class."""
import copy

import torch.nn as nn
from mmengine.logging import MMLogger

from catgen.utils.checkpoint import load_state_dict_checked, safe_load


class TransferStrategy(nn.Module):
    """A transfer method, called by the synthesizer at the points where methods differ.

    The synthesizer (``ConditionalGANSynthesizer``) owns the strategy as ``synth.transfer`` (so the
    strategy's own parameters and buffers, e.g. BSA's latents or EWC's Fisher, are saved in
    checkpoints) and calls, in this order:

    1. :meth:`setup` once, after building G and D and before copying G into the EMA:
       :meth:`load_source` (source weights; layers whose shape depends on the class count are
       handled by :meth:`source_key_filter`), then :meth:`adapt` (replace or wrap layers, keep a
       frozen source copy), then :meth:`set_trainable` (``requires_grad``).
    2. :meth:`optim_params` when the optimizers are built: what each optimizer updates.
    3. :meth:`generator_losses` / :meth:`discriminator_losses` inside every training step: extra
       named loss terms added to the synthesizer's own.

    Args:
        source_checkpoint: path of the source synthesizer's checkpoint (catgen format, e.g.
            ``work_dirs/oasis_synthscenes-source/iter_1000.pth``); None starts from the built
            (random) weights.
        source_generator_prefix: checkpoint prefix the source generator weights are read from;
            the EMA generator (``generator_ema.module.``) is the one papers transfer. Falls back
            to ``generator.`` when the checkpoint has no EMA.
        load_discriminator: also initialise the discriminator from the source checkpoint.
    """

    #: False for methods that need no optimisation at all (training-free CAT).
    requires_training = True
    #: weight of the synthesizer's adversarial generator terms; 0 (e.g. BSA) also skips the
    #: discriminator's update.
    adversarial_weight = 1.0

    def __init__(self, source_checkpoint=None, source_generator_prefix='generator_ema.module.',
                 load_discriminator=True):
        super().__init__()
        self.source_checkpoint = source_checkpoint
        self.source_generator_prefix = source_generator_prefix
        self.load_discriminator = load_discriminator
        self.logger = MMLogger.get_current_instance()

    # ------------------------------------------------------------------ set-up
    def setup(self, synth):
        """Prepare ``synth`` (its ``generator``, ``discriminator``) for this method."""
        if self.source_checkpoint is not None:
            self.load_source(synth)
        self.adapt(synth)
        self.set_trainable(synth)

    def read_source_state(self):
        """The source checkpoint's generator and discriminator state dicts (prefixes removed)."""
        if self.source_checkpoint is None:
            raise ValueError(f'{type(self).__name__} needs source_checkpoint=<path of the source '
                             'model checkpoint>, e.g. work_dirs/oasis_synthscenes-source/'
                             'iter_1000.pth (train it with tools/train.py first).')
        state = safe_load(self.source_checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
        g_prefix = self.source_generator_prefix
        if not any(k.startswith(g_prefix) for k in state):
            g_prefix = 'generator.'
        gen = {k[len(g_prefix):]: v for k, v in state.items() if k.startswith(g_prefix)}
        disc = {k[len('discriminator.'):]: v for k, v in state.items()
                if k.startswith('discriminator.')}
        if not gen:
            raise KeyError(f'{self.source_checkpoint} has no generator weights (keys starting '
                           f'with {self.source_generator_prefix!r} or "generator."); is it a '
                           'catgen synthesizer checkpoint?')
        return gen, disc

    def source_key_filter(self, part, key, source_value, target_value):
        """Whether to copy source weight ``key`` into ``part`` ('generator'|'discriminator').

        Default: copy when the shapes are equal; a layer whose shape depends on the class count
        keeps its fresh initialisation (see :meth:`load_source`'s log). Strategies override it.
        """
        return tuple(source_value.shape) == tuple(target_value.shape)

    def load_source(self, synth):
        """Copy the source weights into ``synth.generator`` and (optionally) its discriminator."""
        gen, disc = self.read_source_state()
        parts = [('generator', synth.generator, gen)]
        if self.load_discriminator and synth.discriminator is not None and disc:
            parts.append(('discriminator', synth.discriminator, disc))
        for part, module, source in parts:
            own = module.state_dict()
            unknown = sorted(set(source) - set(own))
            missing = sorted(set(own) - set(source))
            if unknown or missing:
                # a different architecture, not merely a different class count
                load_state_dict_checked(module, source, strict=True)
            keep = {k: v for k, v in source.items()
                    if self.source_key_filter(part, k, v, own[k])}
            reinit = sorted(set(own) - set(keep))
            own.update(keep)
            module.load_state_dict(own)
            self.logger.info(f'{type(self).__name__}: {part} initialised from '
                             f'{self.source_checkpoint} ({len(keep)} tensors); kept fresh: '
                             f'{reinit if reinit else "none"}')

    def adapt(self, synth):
        """Replace or wrap layers, keep frozen copies (default: nothing)."""

    def set_trainable(self, synth):
        """Set ``requires_grad`` (default: everything trains)."""

    @staticmethod
    def frozen_copy(module):
        """A deep copy of ``module`` in eval mode with ``requires_grad=False`` everywhere."""
        clone = copy.deepcopy(module).eval()
        for p in clone.parameters():
            p.requires_grad_(False)
        return clone

    # ------------------------------------------------------------------ training
    def optim_params(self, synth, part):
        """Parameters updated by the optimizer of ``part`` (default: all of that part)."""
        return list(getattr(synth, part).parameters())

    def generator_noise(self, synth, inputs):
        """The noise the generator gets in this training step, ``Tensor[B, z_dim]``, or None to
        draw it at random (default). BSA returns each image's learned latent."""
        return None

    def generator_losses(self, synth, inputs, fake):
        """Extra generator loss terms: dict of ``loss_*`` scalars (default: none).

        Args:
            synth: the synthesizer.
            inputs: the data preprocessor's dict (``img``, ``label``, ``seg``).
            fake: the images the generator produced in this step, ``Tensor[B, 3, H, W]``.
        """
        return {}

    def discriminator_losses(self, synth, inputs, fake):
        """Extra discriminator loss terms (``fake`` is detached), default none."""
        return {}
