"""The frozen source generator that CDC and DCL compare the adapted generator with.

CDC's and DCL's losses keep the adapted generator's samples corresponding to the SOURCE
generator's for the same input. The source generator is the model the source checkpoint holds,
its class-dependent layers included. Three kinds of anchor (``anchor=``):

- ``'source'`` (the default when the source and target label spaces match: the same class
  count and no mapping given): the loaded source generator itself: every weight, the class
  slices included, is the checkpoint's. It reads the target label maps as they are.
- ``'affinity'`` (the default when they differ): the source generator built with the SOURCE
  class count and loaded with the full source checkpoint, reading the target label map ``y_t``
  through an explicit mapping ``y_s = A^T y_t`` with the class affinity matrix ``A``
  (``N_t x N_s``, don't care -> don't care). ``A`` comes from CAT's code path
  (:meth:`catgen.transfer.cat.CAT.resolve_affinity`): an ``affinity`` estimator config or an
  ``affinity_file``; the mapping is CAT's :class:`~catgen.models.generators.
  affinity_input_generator.AffinityInputGenerator` (fixed, never trained).
- ``'reinit_copy'`` (catgen's behaviour before the "as published" revision, kept as an option):
  a frozen copy of the target generator right after Finetune-all's loading, i.e. the source
  weights except the class channels, which keep their fresh (random) initialisation.

The anchor is a submodule of the strategy (``transfer.source_generator.*`` in checkpoints), in
eval mode with ``requires_grad=False``; it is rebuilt deterministically at set-up from the
source checkpoint and the affinity, and a resumed checkpoint overwrites it with the same values.
The source generator is found through the model protocol only (``source_network()``,
``class_slices()``, ``num_classes``).
"""
import torch

from catgen.models.synthesizers.base_synthesizer import unwrap

#: the kinds of anchor (see the module doc)
ANCHOR_KINDS = ('source', 'affinity', 'reinit_copy')


class SourceAnchorSpec:
    """What a strategy was told about its anchor, checked at construction.

    Args:
        owner: name of the strategy, for messages (e.g. ``'CDC'``).
        anchor: ``'source'``, ``'affinity'``, ``'reinit_copy'`` or None (``'source'`` when the
            label spaces match, else ``'affinity'``).
        affinity: affinity estimator config (``AFFINITY_ESTIMATORS``, e.g.
            ``dict(type='TextAffinity')``); at most one of ``affinity`` / ``affinity_file``.
        affinity_file: a saved :class:`~catgen.affinity.AffinityMatrix` (``.json``).
        target_classes: target class names (a list or a data set config), as CAT's.
        source_classes: source class names likewise; default: the source checkpoint's
            ``meta['dataset_meta']['classes']``.
        target_dataset: the target training set config (filled in by the tools), as CAT's.
        source_dataset: source images for estimators that need them, as CAT's.

    Raises:
        ValueError: an unknown ``anchor``; both ``affinity`` and ``affinity_file``; a mapping
            given with ``anchor='source'`` or ``'reinit_copy'``.
    """

    def __init__(self, owner, anchor=None, affinity=None, affinity_file=None,
                 target_classes=None, source_classes=None, target_dataset=None,
                 source_dataset=None):
        if anchor is not None and anchor not in ANCHOR_KINDS:
            raise ValueError(f'{owner}: anchor must be one of {ANCHOR_KINDS} or None (automatic),'
                             f' got {anchor!r}')
        if affinity is not None and affinity_file is not None:
            raise ValueError(f'{owner}: give at most one of affinity=dict(type=...) and '
                             f'affinity_file=...; got both.')
        mapped = affinity is not None or affinity_file is not None
        if mapped and anchor in ('source', 'reinit_copy'):
            raise ValueError(f'{owner}: anchor={anchor!r} reads the target label maps as they '
                             f'are, but an affinity was given; drop it or set anchor=\'affinity\'.')
        self.owner = owner
        self.anchor = anchor
        self.affinity = affinity
        self.affinity_file = affinity_file
        self.target_classes = target_classes
        self.source_classes = source_classes
        self.target_dataset = target_dataset
        self.source_dataset = source_dataset

    @property
    def mapped(self):
        """Whether a mapping (an affinity) was given."""
        return self.affinity is not None or self.affinity_file is not None

    def resolve_kind(self, n_target, n_source):
        """The anchor kind for ``n_target`` / ``n_source`` label channels (don't care included).

        Raises:
            ValueError: ``'source'`` asked for with differing class counts, or ``'affinity'``
                (asked for or needed) without an affinity; the message names the option to set.
        """
        kind = self.anchor
        if kind is None:
            kind = 'source' if (n_target == n_source and not self.mapped) else 'affinity'
        if kind == 'source' and n_target != n_source:
            raise ValueError(
                f'{self.owner}: anchor=\'source\' reads the target label maps with the source '
                f'generator, but the source reads {n_source} label channels and the target has '
                f'{n_target}. Give the mapping: model.transfer.affinity=dict(type=\'TextAffinity\','
                f' ...) or model.transfer.affinity_file=<matrix .json> (anchor=\'affinity\').')
        if kind == 'affinity' and not self.mapped:
            raise ValueError(
                f'{self.owner}: the source generator reads {n_source} label channels and the '
                f'target label maps have {n_target}: the label spaces differ, so the source '
                f'generator needs an explicit mapping y_s = A^T y_t. Set '
                f'model.transfer.affinity=dict(type=\'TextAffinity\', backend='
                f'\'sentence_transformers\') (any AFFINITY_ESTIMATORS config, as CAT\'s) or '
                f'model.transfer.affinity_file=<saved matrix .json>; or, for the re-initialised '
                f'copy of catgen\'s earlier versions, model.transfer.anchor=\'reinit_copy\'.')
        return kind


def freeze(module):
    """``module`` in eval mode with ``requires_grad=False`` everywhere; returned."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def source_generator_copy(network, source_state):
    """The source generator: a copy of ``network`` holding exactly ``source_state`` (shapes
    included), its ``num_classes`` set to the source's. Frozen.

    Args:
        network: the target generator's ``source_network()``.
        source_state: the source checkpoint's generator state dict (no prefix).

    Returns:
        ``(generator, n_source)``.
    """
    from .ewc import source_num_classes, source_shaped_copy
    n_source = source_num_classes(network, source_state)
    clone = source_shaped_copy(network, source_state)
    n_target = network.num_classes
    for module in clone.modules():  # input checks read it
        if isinstance(getattr(module, 'num_classes', None), int) and \
                module.num_classes == n_target:
            try:
                module.num_classes = n_source
            except AttributeError as err:  # a read-only property
                raise TypeError(f'{type(module).__name__}.num_classes cannot be set; the source '
                                f'anchor needs a generator whose num_classes is a plain '
                                f'attribute (model protocol)') from err
    return freeze(clone), n_source


def resolve_affinity(strategy, spec, n_target, n_source):
    """The :class:`~catgen.affinity.AffinityMatrix` ``(N_t, N_s)`` by CAT's code path.

    Args:
        strategy: the strategy (its ``source_checkpoint`` and ``source_generator_prefix``).
        spec: the :class:`SourceAnchorSpec`.
        n_target, n_source: label channels of the target and the source (don't care included).
    """
    from .cat import CAT
    resolver = CAT(source_checkpoint=strategy.source_checkpoint, affinity=spec.affinity,
                   affinity_file=spec.affinity_file, target_classes=spec.target_classes,
                   source_classes=spec.source_classes, target_dataset=spec.target_dataset,
                   source_dataset=spec.source_dataset,
                   source_generator_prefix=strategy.source_generator_prefix)
    return resolver.resolve_affinity(n_target, n_source)


def build_source_anchor(strategy, synth, spec):
    """The frozen anchor generator of ``strategy`` (see the module doc).

    Call inside :meth:`~catgen.transfer.base.TransferStrategy.adapt` (after the source weights
    are loaded; the source state is read once per set-up).

    Args:
        strategy: a :class:`~catgen.transfer.base.TransferStrategy` with a source checkpoint.
        synth: the synthesizer (its ``generator``).
        spec: the :class:`SourceAnchorSpec`.

    Returns:
        ``(anchor, kind, matrix)``: the frozen generator (``anchor(seg_target, z,
        return_features)`` as the target generator), the kind used, and the AffinityMatrix
        (``'affinity'``) or None.
    """
    target = unwrap(synth.generator)
    if spec.anchor == 'reinit_copy':
        return freeze(strategy.frozen_copy(target)), 'reinit_copy', None
    network = target.source_network()
    gen_state, _ = strategy.read_source_state()
    source, n_source = source_generator_copy(network, gen_state)
    n_target = target.num_classes
    kind = spec.resolve_kind(n_target, n_source)
    if kind == 'source':
        if network is not target:
            raise TypeError(f'{spec.owner}: anchor=\'source\' needs a plain generator; '
                            f'{type(target).__name__} wraps its source network.')
        return source, kind, None
    matrix = resolve_affinity(strategy, spec, n_target, n_source)
    from catgen.models.generators.affinity_input_generator import AffinityInputGenerator
    wrapped = AffinityInputGenerator(source, num_classes=n_target)
    wrapped.set_affinity(matrix)
    wrapped = freeze(wrapped.to(next(target.parameters()).device))
    return wrapped, kind, matrix


ANCHOR_TEXT = {'source': 'the loaded source generator (its class slices included)',
               'affinity': 'the source generator reading A^T y_t',
               'reinit_copy': 'a frozen copy of the target generator after loading (class '
                              'channels re-initialised)'}


class SourceAnchorMixin:
    """The anchor of a strategy that compares the adapted generator with the source generator
    (CDC, DCL); put it before the strategy's base class.

    Call :meth:`init_source_anchor` in ``__init__``; :meth:`adapt` builds
    ``self.source_generator`` (a submodule: saved in checkpoints); :meth:`source_forward` runs it;
    :meth:`checkpoint_meta` records the kind and the affinity matrix.

    Attributes:
        source_generator: the frozen anchor generator (None before set-up).
        anchor_kind: ``'source'``, ``'affinity'`` or ``'reinit_copy'`` after set-up.
        matrix: the :class:`~catgen.affinity.AffinityMatrix` of an ``'affinity'`` anchor, else
            None.
    """

    def init_source_anchor(self, **options):
        """``options``: :class:`SourceAnchorSpec`'s arguments (anchor, affinity, ...)."""
        self.anchor_spec = SourceAnchorSpec(type(self).__name__, **options)
        self.source_generator = None
        self.anchor_kind = None
        self.matrix = None

    def adapt(self, synth):
        super().adapt(synth)
        self.source_generator, self.anchor_kind, self.matrix = build_source_anchor(
            self, synth, self.anchor_spec)
        line = f'{type(self).__name__}: anchor = {ANCHOR_TEXT[self.anchor_kind]}'
        if self.matrix is not None:
            line += f' with {self.matrix}'
        self.logger.info(line)

    def source_forward(self, synth, seg, z, **kwargs):
        """The anchor's output for the target label maps ``seg`` and noise ``z``, without
        gradients, in the adapted generator's train/eval mode (so both normalise with the same
        kind of statistics)."""
        self.source_generator.train(unwrap(synth.generator).training)
        with torch.no_grad():
            return self.source_generator(seg, z, **kwargs)

    def checkpoint_meta(self):
        meta = super().checkpoint_meta()
        meta['anchor'] = self.anchor_kind
        if self.matrix is not None:
            meta['affinity'] = self.matrix.to_json_dict()
        return meta
