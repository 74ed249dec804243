"""CAT: class affinity transfer (Careil, Verbeek and Lathuilière, CVPR 2023).

"Few-shot Semantic Image Synthesis with Class Affinity Transfer". The source model is kept whole
and taught to read target label maps through a class affinity matrix ``A`` (``N_t x N_s``, each
row a distribution over source classes, see :mod:`catgen.affinity`).

The architecture is the config's (so that a CAT checkpoint loads with its config alone):

- the generator is an :class:`~catgen.models.protocol.AffinityInput` generator, e.g.
  ``AffinityInputGenerator(num_classes=N_t + 1, generator=<the source generator's config>)``:
  a 1x1 convolution without bias maps the target one-hot map to ``y_s = A^T y_t`` in front of
  the source generator;
- the discriminator is built for the TARGET class count.

What this strategy does:

1. ``A`` is estimated once at set-up by an affinity estimator (``affinity=dict(type=...)``:
   text, segmenter, features, combined, ground truth; estimators cache their work on disk) or
   read from a file (``affinity_file=...``), and written into the affinity layer. The
   :class:`~catgen.engine.hooks.TransferHook` saves it in the work dir
   (``affinity.json``, the authoritative file, with its heatmap ``affinity.png``) and in every
   checkpoint's ``meta['transfer']['affinity']``.
2. The source generator's weights load unchanged into the wrapped generator.
3. The discriminator's class slices (model protocol: OASIS's N+1 head, a PatchGAN's label
   input) are initialised from the source through ``A`` (``init_discriminator_head``): an
   output row of target class ``t`` is ``sum_s A[t, s] * row(s)`` (the fake and don't-care rows
   copied); a label-input weight ``W_t[:, t] = sum_s A[t, s] W_s[:, s]`` (exactly the layer fed
   ``A^T y_t``).
4. Optional two-stage finetuning (``stage1_iters=n``): for the first n iterations only the
   affinity layer and the discriminator's class slices train, then everything (switched by
   the TransferHook before each iteration).
"""
import os.path as osp

import torch
from mmengine.dist import is_main_process

from catgen.datasets.class_names import build_dataset, class_names_of, real_class_names
from catgen.models.protocol import AffinityInput
from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import AFFINITY_ESTIMATORS, TRANSFER_STRATEGIES

from .base import TransferStrategy, copy_outside_classes, map_classes, missing_source_message

AFFINITY_STEM = 'affinity'


@TRANSFER_STRATEGIES.register_module()
class CAT(TransferStrategy):
    """Class affinity transfer: source model + affinity layer, then finetuning.

    Args:
        source_checkpoint: the source synthesizer's checkpoint (required).
        affinity: estimator config (``AFFINITY_ESTIMATORS``), e.g.
            ``dict(type='TextAffinity')``; exactly one of ``affinity`` / ``affinity_file``.
        affinity_file: a saved :class:`~catgen.affinity.AffinityMatrix` (``.json``).
        target_classes: target class names: a list, or a data set config; default: the
            classes of ``target_dataset``.
        source_classes: source class names likewise; default: the source checkpoint's
            ``meta['dataset_meta']['classes']`` (an estimator such as ``GroundTruthAffinity``
            may also supply both lists).
        target_dataset: config of the target TRAINING set (the few-shot images). Built with
            the strategy, so missing data fails at once, before any long work; gives the target
            class names, and the images to estimators that need them (segmenter, features).
        source_dataset: config of source images, for estimators that need them (features).
        learn_affinity: train the affinity layer (True) or keep it fixed.
        init_discriminator_head: initialise the discriminator's class slices from the source
            through ``A`` (True) or keep their fresh initialisation (False).
        stage1_iters: first-stage length in iterations: until then only the affinity layer and
            the discriminator's class slices train. 0 = one stage.
        source_generator_prefix, load_discriminator: see :class:`TransferStrategy`.

    Attributes:
        matrix: the :class:`AffinityMatrix` after set-up (the initial one; a learned affinity
            layer's current values are in the checkpoint's state dict).
        affinity_paths: the files written into the work dir (dict json/png) or {}.
    """

    def __init__(self, source_checkpoint=None, affinity=None, affinity_file=None,
                 target_classes=None, source_classes=None, target_dataset=None,
                 source_dataset=None, learn_affinity=True, init_discriminator_head=True,
                 stage1_iters=0, source_generator_prefix='generator_ema.module.',
                 load_discriminator=True):
        super().__init__(source_checkpoint=source_checkpoint,
                         source_generator_prefix=source_generator_prefix,
                         load_discriminator=load_discriminator)
        if (affinity is None) == (affinity_file is None):
            raise ValueError(f'{type(self).__name__} needs exactly one of affinity=dict(type=<an '
                             f'AFFINITY_ESTIMATORS name, e.g. "TextAffinity">, ...) or '
                             f'affinity_file=<saved matrix .json>; got affinity={affinity!r}, '
                             f'affinity_file={affinity_file!r}.')
        if stage1_iters and not learn_affinity:
            raise ValueError('stage1_iters > 0 trains only the affinity layer and the '
                             'discriminator head first: it needs learn_affinity=True.')
        self.affinity_cfg = affinity
        self.affinity_file = affinity_file
        self.target_classes = target_classes
        self.source_classes = source_classes
        self.target_dataset_cfg = target_dataset
        self.source_dataset_cfg = source_dataset
        self.learn_affinity = learn_affinity
        self.init_discriminator_head = init_discriminator_head
        self.stage1_iters = int(stage1_iters)
        self.matrix = None
        self.affinity_paths = {}
        self._channel_matrix = None
        self._target_dataset = None
        self._stage = None
        self.preflight()  # missing files fail here, before any long work

    # ------------------------------------------------------------------ set-up
    def setup(self, synth):
        self.preflight()
        gen = unwrap(synth.generator)
        if not isinstance(gen, AffinityInput):
            raise TypeError(
                f'{type(self).__name__} needs a generator that reads target label maps through '
                f'an affinity layer; model.generator is a {type(gen).__name__}. Declare it in '
                f'the config: generator=dict(type="AffinityInputGenerator", num_classes=<N_t + 1>,'
                f' generator=dict(<the source generator config, num_classes=N_s + 1>)) '
                f'(see configs/cat/oasis_synthscenes_100.py).')
        n_t, n_s = gen.num_classes, gen.source_num_classes
        if synth.data_preprocessor.num_classes != n_t:
            raise ValueError(f'the data preprocessor makes {synth.data_preprocessor.num_classes}'
                             f'-channel label maps but the affinity layer reads {n_t}; write the '
                             'target class count once (num_classes in the config).')
        self.matrix = self.resolve_affinity(n_t, n_s)
        self._channel_matrix = torch.as_tensor(self.matrix.to_channel_matrix(),
                                               dtype=torch.float32)
        super().setup(synth)  # load_source -> adapt -> set_trainable
        gen.set_affinity(self.matrix)
        self.logger.info(f'{type(self).__name__}: {self.matrix}; generator input = A^T y_t '
                         f'({n_t} -> {n_s} channels), affinity '
                         f'{"learned" if self.learn_affinity else "fixed"}. Top source classes:\n'
                         + '\n'.join('  ' + line for line in self.matrix.format_top_k(3)))

    def preflight(self):
        """Check, before any long work, that the source checkpoint and the target data exist;
        report everything missing in one error that says what to put where."""
        name = type(self).__name__
        if self.source_checkpoint is None:
            raise ValueError(f'{name} needs model.transfer.source_checkpoint=<path of the source '
                             'model checkpoint>.')
        problems = []
        from catgen.model_zoo.zoo import resolve_checkpoint
        if not osp.isfile(resolve_checkpoint(self.source_checkpoint)):
            problems.append(missing_source_message(name, self.source_checkpoint))
        if self.target_dataset_cfg is not None and self._target_dataset is None:
            try:
                self._target_dataset = build_dataset(self.target_dataset_cfg)
            except FileNotFoundError as err:
                problems.append(f'{name}: the target data is missing: {err}')
        if problems:
            raise FileNotFoundError(f'{name} cannot start:\n- ' + '\n- '.join(problems))

    class_slice_rule = 'mapped through the affinity matrix'

    def init_class_slice(self, part, class_slice, kind, source, own, num_classes):
        if part == 'generator':  # the wrapped source generator reads source maps: unchanged
            if source.shape != own.shape:
                raise ValueError(
                    f'{type(self).__name__} loads the source generator unchanged, but its '
                    f'{class_slice.module} has shape {tuple(source.shape)} in '
                    f'{self.source_checkpoint} and {tuple(own.shape)} in the model: build the '
                    f'wrapped generator (model.generator.generator) with the SOURCE '
                    f'num_classes; the affinity layer maps the target classes to it.')
            return source.detach().clone().to(own)
        if part == 'discriminator' and self.init_discriminator_head:
            return map_classes(class_slice, kind, source, own, num_classes, self._channel_matrix)
        return copy_outside_classes(class_slice, kind, source, own, num_classes)

    def set_trainable(self, synth):
        gen = unwrap(synth.generator)
        gen.requires_grad_(True)
        for p in gen.affinity_parameters():
            p.requires_grad_(self.learn_affinity)
        if synth.discriminator is not None:
            synth.discriminator.requires_grad_(True)

    # ------------------------------------------------------------------ the affinity
    def resolve_affinity(self, num_target_channels, num_source_channels):
        """Estimate (or load) the affinity matrix.

        Args:
            num_target_channels: ``N_t + 1`` (the affinity layer's input channels).
            num_source_channels: ``N_s + 1`` (the source generator's num_classes).

        Returns:
            AffinityMatrix of shape ``(N_t, N_s)``.
        """
        target = class_names_of(self.target_classes)
        if target is None and self._target_dataset is not None:
            target = class_names_of(self._target_dataset)
        source = class_names_of(self.source_classes)
        if source is None:
            source = self._source_checkpoint_classes()
        target = real_class_names(target, num_target_channels, 'target')
        source = real_class_names(source, num_source_channels, 'source')
        if self.affinity_file is not None:
            from catgen.affinity import FromFileAffinity
            mat = FromFileAffinity(self.affinity_file).estimate(target, source)
        else:
            estimator = (AFFINITY_ESTIMATORS.build(self.affinity_cfg)
                         if isinstance(self.affinity_cfg, dict) else self.affinity_cfg)
            ctx = dict(source_checkpoint=self.source_checkpoint)
            if self._target_dataset is not None:
                ctx['target_dataset'] = self._target_dataset
            if self.source_dataset_cfg is not None:
                ctx['source_dataset'] = self.source_dataset_cfg
            mat = estimator.estimate(target, source, **ctx)
        expected = (num_target_channels - 1, num_source_channels - 1)
        if mat.shape != expected:
            raise ValueError(
                f'The affinity matrix is {mat.shape[0]} x {mat.shape[1]} (target x source '
                f'classes) but the model needs {expected[0]} x {expected[1]} '
                f'(model.generator.num_classes={num_target_channels} and the source '
                f'generator\'s num_classes={num_source_channels}, don\'t care included).')
        return mat

    def _source_checkpoint_classes(self):
        """``meta['dataset_meta']['classes']`` of the source checkpoint, or None."""
        from catgen.utils.checkpoint import safe_load
        ckpt = safe_load(self.source_checkpoint, map_location='cpu')
        meta = ckpt.get('meta') or {} if isinstance(ckpt, dict) else {}
        classes = (meta.get('dataset_meta') or {}).get('classes')
        return None if classes is None else [str(c) for c in classes]

    # ------------------------------------------------------------------ runner events
    def before_run(self, runner):
        """Write the matrix (``affinity.json``) and its heatmap (``affinity.png``) into the
        work dir (rank 0)."""
        if self.matrix is None or not is_main_process():
            return
        stem = osp.join(runner.work_dir, AFFINITY_STEM)
        paths = self.matrix.save(stem)
        json_path = paths[0] if isinstance(paths, (tuple, list)) else paths
        png = self.matrix.heatmap(stem + '.png')
        self.affinity_paths = dict(json=str(json_path), png=str(png))
        self.logger.info(f'{type(self).__name__}: affinity saved to {json_path} (heatmap {png})')

    def before_train_iter(self, runner, synth, iteration):
        """Stage 1 (iteration < stage1_iters): only the affinity layer and the discriminator's
        class slices train; then everything."""
        if self.stage1_iters <= 0:
            return
        stage1 = iteration < self.stage1_iters
        if self._stage == stage1:
            return
        self._stage = stage1
        gen = unwrap(synth.generator)
        gen.source_network().requires_grad_(not stage1)
        if synth.discriminator is not None:
            disc = unwrap(synth.discriminator)
            heads = {s.module for s in disc.class_slices()}
            for name, p in disc.named_parameters():
                if name.rpartition('.')[0] not in heads:
                    p.requires_grad_(not stage1)
        self.logger.info(f'{type(self).__name__}: stage {1 if stage1 else 2} '
                         f'({"affinity layer + discriminator class slices" if stage1 else "all"}'
                         ' trains)')

    def checkpoint_meta(self):
        meta = super().checkpoint_meta()
        if self.matrix is not None:
            meta['affinity'] = self.matrix.to_json_dict()
        return meta
