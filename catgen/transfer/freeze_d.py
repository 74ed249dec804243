"""FreezeD (Mo, Cho and Shin, 2020): finetune, but keep the discriminator's early layers frozen.

Reference: "Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs", CVPR-W AI for
Content Creation 2020 (arXiv:2002.10964). The official StyleGAN setting freezes the
high-resolution blocks and trains the three lowest-resolution blocks plus the head.

Here: everything is initialised as in :class:`~catgen.transfer.finetune_all.FinetuneAll` (source
weights, class-dependent layers re-initialised), then the discriminator's first ``k``
(highest-resolution) layers are frozen (``requires_grad=False``) and left out of the
discriminator's optimizer:

- OASIS U-Net discriminator: the encoder blocks ``body_down.0`` .. ``body_down.<k-1>``
  (``OASISDiscriminator.encoder_block_names(k)``); the rest of the encoder, the decoder and the
  head train.
- PatchGAN (SPADE): the layers ``model0`` .. ``model<k-1>`` of every scale. ``model0`` reads the
  label map: its label-map weights are re-initialised (fresh) and then frozen, its image weights
  come from the source.
"""
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


def frozen_layer_names(discriminator, k):
    """Module names of the first ``k`` layers of ``discriminator`` that FreezeD freezes.

    Args:
        discriminator: an OASIS U-Net (has ``encoder_block_names``), a multi-scale PatchGAN
            (``discriminator_<i>`` children) or a single PatchGAN (``model<j>`` children).
        k: number of layers, ``0 <= k <= available``.

    Returns:
        list[str] of module names.

    Raises:
        ValueError: k out of range, or a discriminator FreezeD does not know.
    """
    if hasattr(discriminator, 'encoder_block_names'):
        n = len(discriminator.body_down)
        if not 0 <= k <= n:
            raise ValueError(f'FreezeD: num_frozen_blocks={k} but the OASIS discriminator has '
                             f'{n} encoder blocks (body_down.0..{n - 1}); use 0..{n}.')
        return list(discriminator.encoder_block_names(k))
    children = dict(discriminator.named_children())
    if 'discriminator_0' in children:  # multi-scale PatchGAN: every scale
        return [f'{scale}.{name}' for scale, sub in children.items()
                if scale.startswith('discriminator_')
                for name in frozen_layer_names(sub, k)]
    if 'model0' in children:  # one PatchGAN
        n = sum(1 for c in children if c.startswith('model'))
        if not 0 <= k <= n:
            raise ValueError(f'FreezeD: num_frozen_blocks={k} but the PatchGAN has {n} layers '
                             f'(model0..model{n - 1}); use 0..{n}.')
        return [f'model{j}' for j in range(k)]
    raise ValueError(f'FreezeD does not know which layers of {type(discriminator).__name__} come '
                     'first: expected an OASIS U-Net (body_down.<i>) or a PatchGAN '
                     '(model<j> / discriminator_<i>.model<j>).')


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
        disc = synth.discriminator
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
