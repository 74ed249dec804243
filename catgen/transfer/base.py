"""The few points where few-shot transfer methods differ, in one small base class.

A strategy never changes the architecture (the config declares the networks a run ends with)
and never names a network's layers: what it needs it reads from the model protocol
(:mod:`catgen.models.protocol`): class slices, feature levels, scale/shift sites, input levels.
"""
import copy
import os.path as osp

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from catgen.models.protocol import check_discriminator, check_generator
from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load


def missing_source_message(name, path):
    """The message for a missing source checkpoint: what to put where."""
    return (f'{name}: the source checkpoint {path} does not exist. Put the source model '
            f'checkpoint there (a catgen checkpoint written by tools/train.py, e.g. '
            f'work_dirs/<source config>/iter_<n>.pth, or an official OASIS checkpoint converted '
            f'with tools/convert_oasis_checkpoint.py), or point '
            f'model.transfer.source_checkpoint at it (--cfg-options '
            f'model.transfer.source_checkpoint=PATH).')


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
                         'model checkpoint>, e.g. zoo://oasis_synthscenes-source (the model zoo) or '
                         'a work_dirs/<run>/iter_N.pth written by tools/train.py.')
    from catgen.model_zoo.zoo import resolve_checkpoint
    if not osp.isfile(resolve_checkpoint(path)):  # zoo://NAME: its file, checksum verified
        raise FileNotFoundError(missing_source_message(name, path))


def weight_name(module, name):
    """The parameter a class slice writes: ``weight_orig`` under spectral norm, else ``name``."""
    return f'{name}_orig' if f'{name}_orig' in dict(module.named_parameters(recurse=False)) \
        else name


class TransferStrategy(nn.Module):
    """A transfer method, called by the synthesizer at the points where methods differ.

    The synthesizer owns the strategy as ``synth.transfer`` (so the strategy's own parameters
    and buffers, e.g. BSA's latents or EWC's Fisher, are saved in checkpoints) and calls:

    1. :meth:`setup` once, after building G and D and before copying G into the EMA:
       :meth:`load_source` (source weights into the networks the config built; the class
       slices of the model protocol get :meth:`init_class_slice`), then :meth:`adapt` (frozen
       copies, statistics: no architecture change), then :meth:`set_trainable`.
    2. :meth:`optim_params` when the optimizers are built: what each optimizer updates.
    3. :meth:`generator_noise`, :meth:`generator_losses`, :meth:`discriminator_losses` inside
       every training step; a synthesizer whose class sets ``honours_family_loss_weight = True``
       also scales its own adversarial terms by :meth:`family_loss_weight`.

    Runner events reach it through :class:`~catgen.engine.hooks.TransferHook`:
    :meth:`before_run` (e.g. write files into the work dir), :meth:`before_train_iter`
    (stage switches) and :meth:`checkpoint_meta` (what goes into every checkpoint's meta).

    Args:
        source_checkpoint: path of the source synthesizer's checkpoint (catgen format, e.g.
            ``zoo://oasis_synthscenes-source`` or ``work_dirs/<run>/iter_N.pth``); None starts from the built
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
    #: True when :meth:`generator_losses` reads the generator's feature levels (CDC, DCL): the
    #: synthesizer then asks for them in the step's one generator forward.
    needs_generator_features = False

    def __init__(self, source_checkpoint=None, source_generator_prefix='generator_ema.module.',
                 load_discriminator=True):
        super().__init__()
        self.source_checkpoint = source_checkpoint
        self.source_generator_prefix = source_generator_prefix
        self.load_discriminator = load_discriminator
        self.logger = MMLogger.get_current_instance()
        #: ``{part: [module names]}``: the class slices not copied from the source at loading
        self.reinitialised = {}
        self._source_state = None

    # ------------------------------------------------------------------ set-up
    def setup(self, synth):
        """Prepare ``synth`` (its ``generator``, ``discriminator``) for this method."""
        check_generator(unwrap(synth.generator))
        if synth.discriminator is not None:
            check_discriminator(unwrap(synth.discriminator))
        try:
            if self.source_checkpoint is not None:
                self.load_source(synth)
            self.adapt(synth)
            self.set_trainable(synth)
        finally:
            self._source_state = None  # the source tensors are not kept

    def read_source_state(self):
        """The source checkpoint's generator and discriminator state dicts (prefixes removed),
        read once per set-up."""
        if self._source_state is not None:
            return self._source_state
        if self.source_checkpoint is None:
            raise ValueError(f'{type(self).__name__} needs source_checkpoint=<path of the source '
                             'model checkpoint>, e.g. zoo://oasis_synthscenes-source (the model '
                             'zoo) or a work_dirs/<run>/iter_N.pth written by tools/train.py.')
        check_source_checkpoint(self)
        what = f'source checkpoint {self.source_checkpoint}'
        state = read_state_dict(safe_load(self.source_checkpoint, map_location='cpu'), what=what)
        gen = read_state_dict(state, prefix=(self.source_generator_prefix, 'generator.'),
                              what=what)
        has_disc = any(k.startswith('discriminator.') for k in state)
        disc = read_state_dict(state, prefix='discriminator.', what=what) if has_disc else {}
        self._source_state = gen, disc
        return self._source_state

    def load_source(self, synth):
        """Copy the source weights into ``synth.generator`` and (optionally) its discriminator.

        The weights go into each network's :meth:`~catgen.models.protocol.TransferableNetwork.
        source_network`. Tensors of the class slices are given to :meth:`init_class_slice`;
        every other tensor must have the source's shape (else: an architecture mismatch, with
        a readable error). Keys the network names in ``adapter_keys()`` may be absent from the
        source (they keep their initialisation).
        """
        gen, disc = self.read_source_state()
        parts = [('generator', unwrap(synth.generator), gen)]
        if self.load_discriminator and synth.discriminator is not None and disc:
            parts.append(('discriminator', unwrap(synth.discriminator), disc))
        for part, network, source in parts:
            self.load_network(part, network, source)

    def load_network(self, part, network, source):
        """Load ``source`` (a state dict) into ``network.source_network()`` (see
        :meth:`load_source`)."""
        target = network.source_network()
        own = target.state_dict()
        adapters = set(target.adapter_keys())
        unknown = sorted(set(source) - set(own))
        missing = sorted(set(own) - set(source) - adapters)
        if unknown or missing:  # a different architecture, not merely a different class count
            load_state_dict_checked(target, source, strict=True, source=self.source_checkpoint)
        slices = {}
        for s in target.class_slices():
            module = target.get_submodule(s.module)
            slices[f'{s.module}.{weight_name(module, "weight")}'] = (s, 'weight')
            slices[f'{s.module}.bias'] = (s, 'bias')
        self.reinitialised.setdefault(part, [])
        n_target = target.num_classes
        for key, value in source.items():
            if key in slices:
                s, kind = slices[key]
                dim = 1 if (s.kind == 'input' and kind == 'weight') else 0
                other = [d for d in range(value.dim()) if d != dim]
                if value.dim() != own[key].dim() or any(
                        value.shape[d] != own[key].shape[d] for d in other):
                    raise ValueError(
                        f'{type(self).__name__}: {part}.{key} has shape {tuple(value.shape)} in '
                        f'{self.source_checkpoint} but {tuple(own[key].shape)} in the model; a '
                        f'class slice may differ only in its class channels: the architectures '
                        f'differ (widths, z_dim, depth?). Build the target model with the '
                        f'source config\'s architecture and only the class count changed.')
                own[key] = self.init_class_slice(part, s, kind, value, own[key], n_target)
                copied = own[key].shape == value.shape and torch.equal(own[key], value.to(own[key]))
                if not copied and s.module not in self.reinitialised[part]:
                    self.reinitialised[part].append(s.module)
                continue
            if tuple(value.shape) != tuple(own[key].shape):
                raise ValueError(
                    f'{type(self).__name__}: {part}.{key} has shape {tuple(value.shape)} in '
                    f'{self.source_checkpoint} but {tuple(own[key].shape)} in the model, and '
                    f'the model protocol does not declare it class-dependent: the '
                    f'architectures differ (widths, z_dim, depth?). Build the target model with '
                    f'the source config\'s architecture and only the class count changed.')
            own[key] = value
        target.load_state_dict(own)
        self.logger.info(
            f'{type(self).__name__}: {part} initialised from {self.source_checkpoint}; class '
            f'slices ({self.class_slice_rule}): {", ".join(self.reinitialised[part]) or "none"}')

    #: how :meth:`init_class_slice` treats the class slices, for the log
    class_slice_rule = 'label channels keep their fresh initialisation, the rest is copied'

    def init_class_slice(self, part, class_slice, kind, source, own, num_classes):
        """The value of a class-slice tensor after loading (default: Finetune-all's rule).

        The class channels keep the network's fresh initialisation; everything outside them
        (noise or image input channels, an output row such as OASIS's "fake" row, an input
        layer's bias) is copied from the source.

        Args:
            part: 'generator' or 'discriminator'.
            class_slice: the :class:`~catgen.models.protocol.ClassSlice`.
            kind: 'weight' or 'bias'.
            source: the source tensor (the source class count along the slice's dim).
            own: the freshly initialised tensor of the model (``num_classes`` along it).
            num_classes: the model's class count (don't care included).

        Returns:
            Tensor shaped like ``own``.
        """
        return copy_outside_classes(class_slice, kind, source, own, num_classes)

    def adapt(self, synth):
        """After loading: keep frozen copies, compute statistics (default: nothing). Never
        changes the architecture."""

    def set_trainable(self, synth):
        """Set ``requires_grad`` (default: everything trains)."""

    @staticmethod
    def frozen_copy(module):
        """A deep copy of ``module`` in eval mode with ``requires_grad=False`` everywhere."""
        clone = copy.deepcopy(module).eval()
        for p in clone.parameters():
            p.requires_grad_(False)
        return clone

    def class_param_names(self, network, part):
        """Names of ``network``'s parameters in the class slices restarted at loading."""
        mods = set(self.reinitialised.get(part, []))
        prefix = ''
        if network.source_network() is not network:
            prefix = next(n for n, m in network.named_children()
                          if m is network.source_network()) + '.'
        return [n for n, _ in network.named_parameters()
                if n.startswith(prefix) and n[len(prefix):].rpartition('.')[0] in mods]

    # ------------------------------------------------------------------ runner events
    def before_run(self, runner):
        """Called by :class:`~catgen.engine.hooks.TransferHook` before a run (training, or
        testing a training-free strategy) starts."""

    def before_train_iter(self, runner, synth, iteration):
        """Called before every training iteration ``iteration`` (0-based)."""

    def checkpoint_meta(self):
        """A JSON-able dict stored in every checkpoint's ``meta['transfer']``."""
        return dict(type=type(self).__name__)

    # ------------------------------------------------------------------ training
    def optim_params(self, synth, part):
        """Parameters updated by the optimizer of ``part`` (default: all of that part)."""
        return list(unwrap(getattr(synth, part)).parameters())

    def generator_noise(self, synth, inputs):
        """The noise the generator gets in this training step, ``Tensor[B, z_dim]``, or None to
        draw it at random (default). BSA returns each image's learned latent."""
        return None

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        """Extra generator loss terms: dict of ``loss_*`` scalars (default: none).

        Args:
            synth: the synthesizer.
            inputs: the data preprocessor's dict (``img``, ``label``, ``seg``).
            fake: the images the generator produced in this step, ``Tensor[B, 3, H, W]``.
            z: the noise they were made with, ``Tensor[B, z_dim]`` (None without noise).
            feats: with :attr:`needs_generator_features`, the generator's feature levels from
                the same forward pass (``OrderedDict[level, Tensor]``), else None.
        """
        return {}

    def discriminator_losses(self, synth, inputs, fake, z=None):
        """Extra discriminator loss terms (``fake`` is detached, made with noise ``z``)."""
        return {}

    def family_loss_weight(self, part):
        """Weight of the synthesizer's OWN adversarial loss terms of ``part`` in this step.

        ``part``: 'generator' (the family's adversarial generator term) or 'discriminator' (the
        family's discriminator loss). The default keeps the synthesizer's behaviour:
        :attr:`adversarial_weight` for the generator, 1 for the discriminator. A strategy that
        replaces the family's adversarial loss on some iterations (CDC's patch-level
        discriminator, ``patch_loss='replace'``) returns 0 there and adds its own terms through
        :meth:`generator_losses` / :meth:`discriminator_losses`; the discriminator is still
        updated while :attr:`adversarial_weight` > 0. Only synthesizers whose class sets
        ``honours_family_loss_weight = True`` call it.
        """
        return float(self.adversarial_weight) if part == 'generator' else 1.0


def copy_outside_classes(class_slice, kind, source, own, num_classes):
    """``own`` with everything outside the class channels copied from ``source``.

    Args:
        class_slice: :class:`~catgen.models.protocol.ClassSlice`; class channels are
            ``[start, start + n)`` along dim 1 ('input') or 0 ('output').
        kind: 'weight' or 'bias' (an input layer's bias does not depend on the classes).
        source, own: tensors; ``source`` has the source class count along that dim.
        num_classes: ``n`` of ``own``.
    """
    out = own.detach().clone()
    if kind == 'bias' and class_slice.kind == 'input':
        return source.detach().clone().to(own) if source.shape == own.shape else out
    dim = 1 if class_slice.kind == 'input' else 0
    n_src = source.shape[dim] - (own.shape[dim] - num_classes)
    start = class_slice.start
    with torch.no_grad():
        out.narrow(dim, 0, start).copy_(source.narrow(dim, 0, start))
        after = own.shape[dim] - start - num_classes
        if after > 0:
            out.narrow(dim, start + num_classes, after).copy_(
                source.narrow(dim, start + n_src, after))
    return out


def map_classes(class_slice, kind, source, own, num_classes, matrix):
    """CAT's rule: the class channels of ``own`` from the source's through ``matrix``.

    ``matrix``: channel-space Tensor[N_t + 1, N_s + 1]. 'input' weights: ``W_t[:, t] =
    sum_s M[t, s] W_s[:, s]`` (exactly the layer fed ``M^T y_t``); 'output' rows and biases:
    ``row_t = sum_s M[t, s] row_s``. Outside the class channels the source is copied.
    """
    out = copy_outside_classes(class_slice, kind, source, own, num_classes)
    if kind == 'bias' and class_slice.kind == 'input':
        return out
    dim = 1 if class_slice.kind == 'input' else 0
    n_src = source.shape[dim] - (own.shape[dim] - num_classes)
    if tuple(matrix.shape) != (num_classes, n_src):
        raise ValueError(f'the affinity matrix is {tuple(matrix.shape)} in channel space but the '
                         f'class slice maps {n_src} source to {num_classes} target channels')
    src = source.narrow(dim, class_slice.start, n_src)
    m = matrix.to(src)
    with torch.no_grad():
        mapped = torch.tensordot(src.movedim(dim, -1), m.t(), dims=1).movedim(-1, dim)
        out.narrow(dim, class_slice.start, num_classes).copy_(mapped)
    return out
