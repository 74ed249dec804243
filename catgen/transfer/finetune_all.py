"""Finetune-all: every weight starts from the source model; layers tied to the class count restart.

The standard transfer baseline: the target model (built for the TARGET class count) is initialised
from the source checkpoint, except the layers whose shape depends on the number of classes,
which keep their fresh initialisation:

- generator: the first conv ``fc`` (reads the downsampled label map and noise) and the shared
  conv ``mlp_shared.0`` of every SPADE layer (reads the label map);
- discriminator: the OASIS head ``layer_up_last`` (N + 1 logits per pixel), and the first conv
  ``model0.0`` of every PatchGAN scale (reads ``cat([seg, img])``; its image-channel weights and
  bias are copied from the source, only the label-map channels restart).

Everything then trains with the config's optimizers. Which weights were re-initialised is logged.
"""
import os.path as osp
import re

import torch.nn as nn

from catgen.registry import TRANSFER_STRATEGIES

from .base import TransferStrategy

#: Module names (regular expressions, full match) of the layers that read the label map or
#: predict the classes, per part. Only ``nn.Conv2d`` modules match (a VAE SPADE generator's
#: ``fc`` is a Linear on the style code and does not depend on the classes).
CLASS_LAYERS = dict(
    generator=(r'fc', r'(.+\.)?mlp_shared\.0'),
    discriminator=(r'layer_up_last', r'(.+\.)?model0\.0'),
)
#: the PatchGAN input conv, whose last ``img_channels`` input channels read the image.
PATCHGAN_INPUT = re.compile(r'(.+\.)?model0\.0')


def check_source_checkpoint(strategy):
    """Raise at once, naming the file, when ``strategy.source_checkpoint`` is not a file.

    Raises:
        ValueError: no source checkpoint configured.
        FileNotFoundError: the file does not exist (says what to put there).
    """
    name = type(strategy).__name__
    path = strategy.source_checkpoint
    if path is None:
        raise ValueError(f'{name} needs model.transfer.source_checkpoint=<path of the source '
                         'model checkpoint>, e.g. work_dirs/oasis_synthscenes-source/iter_1000.pth '
                         '(train the source model with tools/train.py first).')
    if not osp.isfile(path):
        raise FileNotFoundError(missing_source_message(name, path))


def missing_source_message(name, path):
    """The message for a missing source checkpoint: what to put where."""
    return (f'{name}: the source checkpoint {path} does not exist. Put the source model '
            f'checkpoint there (a catgen checkpoint written by tools/train.py, e.g. '
            f'work_dirs/<source config>/iter_<n>.pth, or an official OASIS checkpoint converted '
            f'with tools/convert_oasis_checkpoint.py), or point '
            f'model.transfer.source_checkpoint at it (--cfg-options '
            f'model.transfer.source_checkpoint=PATH).')


@TRANSFER_STRATEGIES.register_module()
class FinetuneAll(TransferStrategy):
    """Initialise G and D from the source; re-initialise the class-dependent layers; train all.

    Args:
        source_checkpoint: the source synthesizer's checkpoint (required).
        reinit_class_layers: True (default) re-initialises the class-dependent layers even when
            the source and target class counts happen to be equal (the label spaces differ);
            False copies them when their shapes match.
        class_layers: ``dict(generator=(regex, ...), discriminator=(regex, ...))`` overriding
            :data:`CLASS_LAYERS` (module names, full match).
        source_generator_prefix, load_discriminator: see :class:`TransferStrategy`.

    Attributes:
        reinitialised: ``{'generator': [module names], 'discriminator': [...]}`` after setup.
    """

    def __init__(self, source_checkpoint=None, reinit_class_layers=True, class_layers=None,
                 source_generator_prefix='generator_ema.module.', load_discriminator=True):
        super().__init__(source_checkpoint=source_checkpoint,
                         source_generator_prefix=source_generator_prefix,
                         load_discriminator=load_discriminator)
        self.reinit_class_layers = reinit_class_layers
        layers = dict(CLASS_LAYERS)
        layers.update(class_layers or {})
        self.class_layers = {part: [re.compile(p) for p in patterns]
                             for part, patterns in layers.items()}
        self.reinitialised = {}
        self._modules_of = {}
        self._source_state = None
        check_source_checkpoint(self)  # a missing file fails here, before any long work

    # ------------------------------------------------------------------ set-up
    def setup(self, synth):
        check_source_checkpoint(self)
        self._modules_of = {part: dict(getattr(synth, part).named_modules())
                            for part in ('generator', 'discriminator')
                            if getattr(synth, part, None) is not None}
        self.reinitialised = {part: [] for part in self._modules_of}
        try:
            super().setup(synth)
        finally:
            self._modules_of, self._source_state = {}, None
        self.logger.info(
            f'{type(self).__name__}: re-initialised class-dependent layers (fresh weights): '
            + '; '.join(f'{part}: {", ".join(names) if names else "none"}'
                        for part, names in self.reinitialised.items()))

    def read_source_state(self):
        """The source state dicts, read once per set-up."""
        if self._source_state is None:
            self._source_state = super().read_source_state()
        return self._source_state

    def is_class_layer(self, part, module_name):
        """Whether module ``module_name`` of ``part`` depends on the class count."""
        module = self._modules_of.get(part, {}).get(module_name)
        return isinstance(module, nn.Conv2d) and any(
            p.fullmatch(module_name) for p in self.class_layers.get(part, ()))

    def source_key_filter(self, part, key, source_value, target_value):
        module_name = key.rsplit('.', 1)[0]
        same_shape = tuple(source_value.shape) == tuple(target_value.shape)
        if self.is_class_layer(part, module_name):
            if self.reinit_class_layers or not same_shape:
                if module_name not in self.reinitialised[part]:
                    self.reinitialised[part].append(module_name)
                return False
            return True
        if not same_shape:
            raise ValueError(
                f'{type(self).__name__}: {part}.{key} has shape {tuple(source_value.shape)} in '
                f'{self.source_checkpoint} but {tuple(target_value.shape)} in the model, and it '
                f'is not a class-dependent layer: the architectures differ (widths, z_dim, '
                f'depth?). Build the target model with the source config\'s architecture and '
                f'only the class count changed.')
        return True

    def load_source(self, synth):
        super().load_source(synth)
        if self.load_discriminator and synth.discriminator is not None:
            self._copy_image_channels(synth)

    def _copy_image_channels(self, synth):
        """PatchGAN first convs (``model0.0``) read ``cat([seg, img])``: copy their image-channel
        weights and bias from the source (the label-map channels keep their fresh init)."""
        _, disc = self.read_source_state()
        num_classes = getattr(synth.discriminator, 'num_classes', None)
        for name in self.reinitialised.get('discriminator', []):
            module = self._modules_of['discriminator'][name]
            src_w = disc.get(f'{name}.weight')
            if not PATCHGAN_INPUT.fullmatch(name) or num_classes is None or src_w is None:
                continue
            img_ch = module.in_channels - num_classes  # the image channels come last
            if img_ch <= 0 or src_w.shape[0] != module.out_channels or src_w.shape[1] < img_ch:
                continue
            module.weight.data[:, -img_ch:] = src_w[:, -img_ch:].to(module.weight)
            if module.bias is not None and f'{name}.bias' in disc:
                module.bias.data.copy_(disc[f'{name}.bias'])
            self.logger.info(f'{type(self).__name__}: discriminator {name}: image-channel '
                             'weights and bias copied from the source; label-map channels fresh')
