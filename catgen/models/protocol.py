"""The model protocol: what a generator or discriminator declares so that transfer methods work.

Transfer strategies (``catgen/transfer``) never name a network's layers. A network family
(OASIS, SPADE, a plugin's) declares, through the small interface below, the four things the
published methods need:

1. **Class slices** (:meth:`TransferableNetwork.class_slices`): the parameters whose shape
   follows the class count. An ``'input'`` slice is a layer that reads the label map
   (``weight[:, start:start + num_classes]`` are its label-channel weights, e.g. a generator's
   first conv, every SPADE embedding, a PatchGAN's input conv); an ``'output'`` slice is a layer
   that predicts the classes (``weight[start:start + num_classes]`` and the same rows of the
   bias, e.g. OASIS's N+1 head, whose row 0 is "fake"). Finetune-all restarts exactly these
   slices; CAT maps them through the affinity matrix.
2. **Named feature levels**, returned by the *same* forward pass that produces the output:
   ``G(seg, z, return_features=True) -> (img, {level: Tensor[B, C, h, w]})`` and
   ``D(img, seg, return_features=True) -> (out, {level: Tensor[B, C, h, w]})``, in forward
   order. CDC and DCL read generator levels, DCL and patch discriminators read discriminator
   levels. :meth:`TransferableNetwork.feature_levels` lists the names without running anything.
3. **Normalisation scale/shift sites** (generators, :meth:`TransferableGenerator.scale_shift`):
   the per-channel scale and shift after every normalisation, which BSA adapts. A generator
   builds them when the config asks for them (``norm_affine=True`` on OASIS and SPADE), so the
   architecture a BSA run ends with is the config's.
4. **One discriminator call signature**: ``D(img, seg, return_features=False)``; a discriminator
   that does not read the label map ignores ``seg``. The family's loss reads its output; a
   transfer method that needs a likelihood (EWC) calls :meth:`TransferableDiscriminator.
   log_likelihood`. FreezeD freezes :meth:`TransferableDiscriminator.input_levels`, the layers
   from the input side (highest resolution first).

A network built with extra parameters that a source model lacks (a BSA scale/shift, CAT's
affinity layer) names them in :meth:`TransferableNetwork.adapter_keys`, so that loading the
source leaves them at their initialisation instead of calling it an architecture mismatch.
A wrapper (CAT's :class:`~catgen.models.generators.affinity_input_generator.
AffinityInputGenerator`) returns the wrapped network from :meth:`TransferableNetwork.
source_network`: the source checkpoint's weights go there.

See docs/conventions.md, "Adding a generator family".
"""
from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClassSlice:
    """A parameter slice whose size is the class count.

    Attributes:
        module: name of the layer under the network (``network.get_submodule(module)``), a
            conv or linear layer with ``weight`` (and optionally ``bias``).
        kind: ``'input'``: ``weight[:, start:start + num_classes]`` reads the label channels
            (the rest of the input channels, e.g. noise or image channels, and the bias do not
            depend on the classes); ``'output'``: ``weight[start:start + num_classes]`` and
            ``bias[start:start + num_classes]`` predict the classes (rows before ``start``,
            e.g. OASIS's "fake" row, do not).
        start: index of the first class channel along that dimension.
    """

    module: str
    kind: str
    start: int = 0

    def __post_init__(self):
        if self.kind not in ('input', 'output'):
            raise ValueError(f"ClassSlice.kind must be 'input' or 'output', got {self.kind!r}")

    def index(self, num_classes):
        """The ``slice`` of the class channels along dim 1 ('input') or 0 ('output')."""
        return slice(self.start, self.start + num_classes)


class TransferableNetwork:
    """Mixin of every generator and discriminator that transfer methods work on.

    Subclasses set ``self.num_classes`` (label channels, don't care included) and override
    :meth:`class_slices` and :meth:`feature_levels`.
    """

    #: label channels the network reads or predicts (don't care included); set by subclasses.
    num_classes = None

    def class_slices(self):
        """The class-count-dependent parameter slices: list[:class:`ClassSlice`]."""
        return []

    def feature_levels(self):
        """Names of the feature levels ``forward(..., return_features=True)`` returns, in order."""
        return ()

    def adapter_keys(self):
        """State-dict keys a source network of the same family lacks by design (kept at their
        initialisation when the source is loaded): list[str]."""
        return []

    def source_network(self):
        """The module whose state a source checkpoint's weights load into (self, or the
        network a wrapper wraps)."""
        return self

    # ---------------------------------------------------------------- helpers for strategies
    def class_slice_modules(self):
        """``[(ClassSlice, module)]`` with every slice's layer resolved."""
        return [(s, self.get_submodule(s.module)) for s in self.class_slices()]

    def check_protocol(self):
        """Raise a readable error if the declared slices do not match the layers' shapes."""
        for s, module in self.class_slice_modules():
            weight = getattr(module, 'weight', None)
            if weight is None:
                raise TypeError(f'{type(self).__name__}.class_slices(): {s.module} has no weight')
            dim = 1 if s.kind == 'input' else 0
            if weight.shape[dim] < s.start + self.num_classes:
                raise ValueError(
                    f'{type(self).__name__}.class_slices(): {s.module}.weight has '
                    f'{weight.shape[dim]} channels along dim {dim}, fewer than start '
                    f'{s.start} + num_classes {self.num_classes}.')


class TransferableGenerator(TransferableNetwork):
    """A generator: ``forward(seg, z=None, return_features=False)``.

    ``seg``: Tensor[B, num_classes, H, W] one-hot (or soft) label map (an unconditional
    generator ignores it); ``z``: Tensor[B, z_dim] or None (drawn inside); returns
    Tensor[B, 3, H, W] in [-1, 1], or ``(img, OrderedDict[level, Tensor])``.

    Attributes to set: ``num_classes``, ``z_dim`` (0: takes no noise), ``output_size``
    ((H, W) it generates, or None when any size divisible by its stride works).
    """

    z_dim = 0
    output_size = None

    def scale_shift(self):
        """BSA's sites: ``OrderedDict[name, (scale, shift)]``, per-channel parameters applied
        after each normalisation (``x_hat * scale + shift``). Empty when the network was built
        without them (OASIS/SPADE: ``norm_affine=False``)."""
        return OrderedDict()


class TransferableDiscriminator(TransferableNetwork):
    """A discriminator: ``forward(img, seg, return_features=False)``.

    ``img``: Tensor[B, 3, H, W] in [-1, 1]; ``seg``: Tensor[B, num_classes, H, W] (ignored by a
    discriminator that does not read the label map). Returns the family's output (read by the
    family's loss), or ``(output, OrderedDict[level, Tensor])``.
    """

    def input_levels(self):
        """Layers grouped by depth from the input side, highest resolution first:
        ``[[module name, ...], ...]`` (one name per scale for a multi-scale discriminator).
        FreezeD freezes the first k groups."""
        return []

    def log_likelihood(self, output, seg, kind='real'):
        """Mean log-probability the discriminator gives its input for being real (EWC).

        Args:
            output: what ``forward(img, seg)`` returned.
            seg: Tensor[B, num_classes, H, W], the label map the image was made from.
            kind: 'real' (real vs fake) or 'label' (the class of the generating label map;
                only for discriminators with a class head).

        Returns:
            scalar Tensor.
        """
        raise NotImplementedError(f'{type(self).__name__} does not define log_likelihood()')


class AffinityInput:
    """A generator that reads target label maps through a class affinity layer (CAT).

    ``num_classes`` is the target's ``N_t + 1``; ``source_num_classes`` the ``N_s + 1`` of the
    wrapped source generator (:meth:`TransferableNetwork.source_network`).
    """

    source_num_classes = None

    def set_affinity(self, matrix):
        """Write ``matrix`` (an AffinityMatrix, or a channel-space array
        ``[N_t + 1, N_s + 1]``) into the affinity layer."""
        raise NotImplementedError

    def affinity_parameters(self):
        """The affinity layer's parameters (what CAT's ``learn_affinity`` trains)."""
        raise NotImplementedError


def _check(obj, protocol, what, methods):
    if not isinstance(obj, protocol):
        raise TypeError(
            f'{what} is a {type(obj).__name__}, which does not implement catgen\'s '
            f'{protocol.__name__} protocol (catgen.models.protocol: {methods}); transfer '
            'strategies need it. See docs/conventions.md, "Adding a generator family".')
    return obj


def check_generator(gen, what='model.generator'):
    """Raise a clear error unless ``gen`` implements :class:`TransferableGenerator`."""
    return _check(gen, TransferableGenerator, what,
                  'class_slices, feature_levels, forward(seg, z, return_features)')


def check_discriminator(disc, what='model.discriminator'):
    """Raise a clear error unless ``disc`` implements :class:`TransferableDiscriminator`."""
    return _check(disc, TransferableDiscriminator, what,
                  'class_slices, feature_levels, input_levels, '
                  'forward(img, seg, return_features)')


def mean_log_sigmoid(logits):
    """Mean of ``log sigmoid`` over a list of patch-logit tensors (a patch D's 'real' score)."""
    return torch.stack([torch.nn.functional.logsigmoid(t).mean() for t in logits]).mean()
