"""CAT: class affinity transfer (Careil, Verbeek and Lathuilière, CVPR 2023).

"Few-shot Semantic Image Synthesis with Class Affinity Transfer". The source model is kept whole
and taught to read target label maps through a class affinity matrix ``A`` (``N_t x N_s``, each
row a distribution over source classes, see :mod:`catgen.affinity`):

1. ``A`` is estimated once at set-up by an affinity estimator (``affinity=dict(type=...)``:
   text, segmenter, features, combined, ground truth) or read from a file
   (``affinity_file=...``). It is saved with the run as ``<work_dir>/affinity.{json,npz,png}``
   (heatmap) and reused from there when the same estimator and classes ask again.
2. Generator: the SOURCE generator (built with the source class count, ``N_s + 1`` channels,
   loaded whole from the source checkpoint) is wrapped by :class:`CATGenerator`: a 1x1
   convolution without bias (:class:`~catgen.models.layers.affinity_layer.AffinityLayer`,
   weights ``A^T``, don't care -> don't care) maps the target one-hot map (``N_t + 1``
   channels, the data preprocessor's ``num_classes``) to a soft source map ``y_s = A^T y_t``
   before anything else; the noise is concatenated after it, inside the source generator.
   The affinity layer is learned or fixed (``learn_affinity``).
3. OASIS discriminator: the source head (``N_s + 2`` logits: fake, don't care, source classes)
   is replaced by a target head (``N_t + 2``) initialised from it: the fake row and the
   don't-care row are copied, the row of target class ``t`` is ``sum_s A[t, s] * row(s)``,
   weights and biases alike (``init_discriminator_head``). For a PatchGAN discriminator (SPADE)
   the label-map input channels of the first conv of every scale are mapped the same way
   (``W_t = sum_s A[t, s] W_s``: exactly equivalent to feeding it ``A^T y_t``).
4. Optional two-stage finetuning (``stage1_iters=n``): for the first n iterations only the
   affinity layer and the discriminator head train; then everything.

Checkpoint keys: ``generator.affinity.weight`` and ``generator.generator.<source generator
keys>`` (the same under ``generator_ema.module.``); the discriminator keeps its own names.
"""
import hashlib
import json
import os.path as osp
import sys

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import MessageHub

from catgen.affinity import AffinityMatrix
from catgen.models.layers.affinity_layer import AffinityLayer
from catgen.models.synthesizers.base_synthesizer import frozen
from catgen.registry import AFFINITY_ESTIMATORS, DATASETS, TRANSFER_STRATEGIES

from .base import TransferStrategy
from .finetune_all import missing_source_message

AFFINITY_STEM = 'affinity'


class CATGenerator(nn.Module):
    """A generator behind CAT's affinity layer; keeps the generator interface.

    Args:
        affinity: the :class:`AffinityLayer` (``N_t + 1`` -> ``N_s + 1`` channels).
        generator: the source generator (``forward(seg, z=None, return_features=False)``,
            ``z_dim``), built with ``num_classes = N_s + 1``.

    Attributes:
        train_body: False runs the source generator with its parameters frozen (gradients
            still reach the affinity layer through it): CAT's first finetuning stage.
        num_classes: ``N_t + 1`` (what it reads); other attributes (``z_dim``,
            ``output_size``, ...) are the source generator's.
    """

    def __init__(self, affinity, generator):
        super().__init__()
        if getattr(generator, 'num_classes', affinity.num_source) != affinity.num_source:
            raise ValueError(f'The affinity layer outputs {affinity.num_source} channels but the '
                             f'source generator reads {generator.num_classes}.')
        self.affinity = affinity
        self.generator = generator
        self.train_body = True

    @property
    def num_classes(self):
        return self.affinity.num_target

    @property
    def source_num_classes(self):
        return self.affinity.num_source

    @property
    def z_dim(self):
        return getattr(self.generator, 'z_dim', 0)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith('_') or name in ('affinity', 'generator'):
                raise
            return getattr(self._modules['generator'], name)

    def forward(self, seg, z=None, return_features=False):
        """seg: Tensor[B, N_t + 1, H, W] (target one-hot); z: Tensor[B, z_dim] or None.

        Returns what the source generator returns for ``A^T seg``: Tensor[B, 3, H, W], or
        ``(img, feats)`` with ``return_features``.
        """
        soft = self.affinity(seg)
        kwargs = dict(return_features=True) if return_features else {}
        if self.train_body or not torch.is_grad_enabled():
            return self.generator(soft, z, **kwargs)
        with frozen(self.generator):
            return self.generator(soft, z, **kwargs)


def class_names_of(spec):
    """Class names from a list, a built data set, or a data set config (``dict(type=...)``).

    A config's class ``METAINFO['classes']`` is used when the class declares them (no data
    needed); otherwise the data set is built lazily and its ``metainfo['classes']`` read.
    """
    if spec is None:
        return None
    if hasattr(spec, 'metainfo'):
        return [str(n) for n in spec.metainfo['classes']]
    if isinstance(spec, dict):
        cls = DATASETS.get(spec['type'])
        classes = getattr(cls, 'METAINFO', {}).get('classes')
        if not classes:
            classes = build_dataset(dict(spec, lazy_init=True)).metainfo['classes']
        return [str(n) for n in classes]
    if isinstance(spec, str):
        raise TypeError(f'class names must be a list of names or a data set config, got the '
                        f'string {spec!r}')
    return [str(n) for n in spec]


def real_class_names(names, channels, what):
    """Drop the leading don't-care name when ``names`` has one name per channel.

    Args:
        names: class names, with (``channels`` names) or without (``channels - 1``) don't care.
        channels: the model's channel count for that side (don't care included).
    """
    if names is None:
        return None
    if len(names) == channels:
        return list(names[1:])
    if len(names) == channels - 1:
        return list(names)
    raise ValueError(f'CAT: {len(names)} {what} class names {names[:5]}... do not fit the '
                     f'model\'s {channels} {what} channels (don\'t care included): expected '
                     f'{channels - 1} real class names, or {channels} with the don\'t-care name '
                     f'first.')


def build_dataset(cfg):
    """A catgen data set from its config; the pipeline is dropped (only files are read)."""
    from catgen.utils.setup_env import guarded_default_scope
    cfg = {k: v for k, v in dict(cfg).items() if k != 'pipeline'}
    with guarded_default_scope('catgen'):
        return DATASETS.build(cfg)


def runner_work_dir():
    """The work dir of the MMEngine Runner that is building this model, or None.

    The model is built inside ``Runner.__init__`` (after the work dir is set); the Runner is
    found on the call stack, so a model built elsewhere (``init_synthesizer``, tests) never
    writes into an earlier Runner's work dir.
    """
    from mmengine.runner import Runner
    frame = sys._getframe(1)
    while frame is not None:
        obj = frame.f_locals.get('self')
        if isinstance(obj, Runner):
            return obj.work_dir
        frame = frame.f_back
    return None


@TRANSFER_STRATEGIES.register_module()
class CAT(TransferStrategy):
    """Class affinity transfer: source model + affinity layer, then finetuning.

    Args:
        source_checkpoint: the source synthesizer's checkpoint (required). The config's
            generator and discriminator are built with the SOURCE class count
            (``num_classes = N_s + 1``); the data preprocessor with the target's (``N_t + 1``).
        affinity: estimator config (``AFFINITY_ESTIMATORS``), e.g.
            ``dict(type='TextAffinity')``; exactly one of ``affinity`` / ``affinity_file``.
        affinity_file: a saved :class:`~catgen.affinity.AffinityMatrix` (``.json``/``.npz``).
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
        init_discriminator_head: initialise the discriminator's target head (or PatchGAN
            input) from the source through ``A`` (True) or freshly (False).
        stage1_iters: first-stage length in iterations (OASIS discriminator only): until then
            only the affinity layer and the discriminator head train. 0 = one stage.
        save_dir: where ``affinity.{json,npz,png}`` go; default: the Runner's work dir (none
            outside a Runner).
        reuse_saved: reuse ``<save_dir>/affinity.json`` when it was made by the same
            estimator config for the same classes.
        source_generator_prefix, load_discriminator: see :class:`TransferStrategy`.

    Attributes:
        matrix: the :class:`AffinityMatrix` after set-up (the initial one; a learned affinity
            layer's current values are ``synth.generator.affinity.matrix``, saved in
            checkpoints as ``generator[_ema.module].affinity.weight``).
        affinity_paths: the saved files (dict json/npz/png) or {}.
    """

    def __init__(self, source_checkpoint=None, affinity=None, affinity_file=None,
                 target_classes=None, source_classes=None, target_dataset=None,
                 source_dataset=None, learn_affinity=True, init_discriminator_head=True,
                 stage1_iters=0, save_dir=None, reuse_saved=True,
                 source_generator_prefix='generator_ema.module.', load_discriminator=True):
        super().__init__(source_checkpoint=source_checkpoint,
                         source_generator_prefix=source_generator_prefix,
                         load_discriminator=load_discriminator)
        if (affinity is None) == (affinity_file is None):
            raise ValueError(f'{type(self).__name__} needs exactly one of affinity=dict(type=<an '
                             f'AFFINITY_ESTIMATORS name, e.g. "TextAffinity">, ...) or '
                             f'affinity_file=<saved matrix .json/.npz>; got affinity={affinity!r}, '
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
        self.save_dir = save_dir
        self.reuse_saved = reuse_saved
        self.matrix = None
        self.affinity_paths = {}
        self._target_dataset = None
        self._saved_flags = None
        self._stage = None
        self.preflight()  # missing files fail here, before any long work

    # ------------------------------------------------------------------ set-up
    def setup(self, synth):
        self.preflight()
        super().setup(synth)  # load_source -> adapt (affinity, wrap G, D head) -> set_trainable

    def preflight(self):
        """Check, before any long work, that the source checkpoint and the target data exist;
        report everything missing in one error that says what to put where. Runs when the
        strategy is built and again at set-up (cheap: the data set is built once)."""
        name = type(self).__name__
        if self.source_checkpoint is None:
            raise ValueError(f'{name} needs model.transfer.source_checkpoint=<path of the source '
                             'model checkpoint>.')
        problems = []
        if not osp.isfile(self.source_checkpoint):
            problems.append(missing_source_message(name, self.source_checkpoint))
        if self.target_dataset_cfg is not None and self._target_dataset is None:
            try:
                self._target_dataset = build_dataset(self.target_dataset_cfg)
            except FileNotFoundError as err:
                problems.append(f'{name}: the target data is missing: {err}')
        if problems:
            raise FileNotFoundError(f'{name} cannot start:\n- ' + '\n- '.join(problems))

    def source_key_filter(self, part, key, source_value, target_value):
        if tuple(source_value.shape) == tuple(target_value.shape):
            return True
        raise ValueError(
            f'{type(self).__name__} loads the source {part} unchanged, but {part}.{key} has shape '
            f'{tuple(source_value.shape)} in {self.source_checkpoint} and '
            f'{tuple(target_value.shape)} in the model. Build model.{part} exactly as the source '
            f'model (the SOURCE num_classes, widths, z_dim); only data_preprocessor.num_classes '
            f'is the target\'s: the affinity layer maps target to source classes.')

    def adapt(self, synth):
        gen = synth.generator
        n_s = getattr(gen, 'num_classes', None)
        n_t = synth.data_preprocessor.num_classes
        if n_s is None:
            raise ValueError(f'{type(self).__name__}: the generator {type(gen).__name__} has no '
                             'num_classes attribute; CAT needs its label channel count.')
        self.matrix = self.resolve_affinity(n_t, n_s)
        m = torch.as_tensor(self.matrix.to_channel_matrix(), dtype=torch.float32)
        layer = AffinityLayer(self.matrix, learnable=self.learn_affinity)
        synth.generator = CATGenerator(layer, gen)
        if synth.discriminator is not None:
            self.adapt_discriminator(synth.discriminator, m)
        self.logger.info(f'{type(self).__name__}: {self.matrix}; generator input = A^T y_t '
                         f'({n_t} -> {n_s} channels), affinity '
                         f'{"learned" if self.learn_affinity else "fixed"}. Top source classes:\n'
                         + '\n'.join('  ' + line for line in self.matrix.format_top_k(3)))

    def set_trainable(self, synth):
        synth.generator.requires_grad_(True)
        synth.generator.affinity.weight.requires_grad_(self.learn_affinity)
        if synth.discriminator is not None:
            synth.discriminator.requires_grad_(True)
        if self.stage1_iters > 0:
            self.register_stages(synth)

    # ------------------------------------------------------------------ the affinity
    def resolve_affinity(self, num_target_channels, num_source_channels):
        """Estimate (or load, or reuse) the affinity matrix and save it with its heatmap.

        Args:
            num_target_channels: ``N_t + 1`` (the data preprocessor's num_classes).
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
        save_dir = self.save_dir or runner_work_dir()

        if self.affinity_file is not None:
            from catgen.affinity import FromFileAffinity
            mat = FromFileAffinity(self.affinity_file).estimate(target, source)
        else:
            key = self._cache_key(target, source)
            mat = self._load_saved(save_dir, key, target, source) if self.reuse_saved else None
            if mat is None:
                estimator = (AFFINITY_ESTIMATORS.build(self.affinity_cfg)
                             if isinstance(self.affinity_cfg, dict) else self.affinity_cfg)
                ctx = dict(work_dir=save_dir, source_checkpoint=self.source_checkpoint)
                if self._target_dataset is not None:
                    ctx['target_dataset'] = self._target_dataset
                if self.source_dataset_cfg is not None:
                    ctx['source_dataset'] = self.source_dataset_cfg
                mat = estimator.estimate(target, source, **ctx)
                mat.meta['cat_key'] = key
            else:
                self.logger.info(f'{type(self).__name__}: reusing the affinity matrix saved in '
                                 f'{save_dir}')
        expected = (num_target_channels - 1, num_source_channels - 1)
        if mat.shape != expected:
            raise ValueError(
                f'The affinity matrix is {mat.shape[0]} x {mat.shape[1]} (target x source '
                f'classes) but the model needs {expected[0]} x {expected[1]} '
                f'(data_preprocessor.num_classes={num_target_channels} and the source '
                f'generator\'s num_classes={num_source_channels}, don\'t care included).')
        if save_dir is not None:
            stem = osp.join(save_dir, AFFINITY_STEM)
            json_path, npz_path = mat.save(stem)
            png = mat.heatmap(stem + '.png')
            self.affinity_paths = dict(json=str(json_path), npz=str(npz_path), png=str(png))
            self.logger.info(f'{type(self).__name__}: affinity saved to {json_path} (heatmap '
                             f'{png})')
        return mat

    def _cache_key(self, target, source):
        spec = json.dumps(dict(affinity=repr(self.affinity_cfg), target=target, source=source),
                          sort_keys=True, default=str)
        return hashlib.sha256(spec.encode()).hexdigest()[:16]

    def _load_saved(self, save_dir, key, target, source):
        path = None if save_dir is None else osp.join(save_dir, AFFINITY_STEM + '.json')
        if path is None or not osp.isfile(path):
            return None
        try:
            mat = AffinityMatrix.load(path)
        except (OSError, ValueError, KeyError):
            return None
        if mat.meta.get('cat_key') != key:
            return None
        if (target is not None and list(mat.target_classes) != list(target)) or (
                source is not None and list(mat.source_classes) != list(source)):
            return None
        return mat

    def _source_checkpoint_classes(self):
        """``meta['dataset_meta']['classes']`` of the source checkpoint, or None."""
        from catgen.utils.checkpoint import safe_load
        ckpt = safe_load(self.source_checkpoint, map_location='cpu')
        meta = ckpt.get('meta') or {} if isinstance(ckpt, dict) else {}
        classes = (meta.get('dataset_meta') or {}).get('classes')
        return None if classes is None else [str(c) for c in classes]

    # ------------------------------------------------------------------ the discriminator
    def adapt_discriminator(self, disc, m):
        """Map the discriminator from source to target classes through ``m``.

        Args:
            disc: an OASIS U-Net (head ``layer_up_last``) or a (multi-scale) PatchGAN.
            m: channel-space matrix Tensor[N_t + 1, N_s + 1].
        """
        if hasattr(disc, 'layer_up_last'):
            disc.layer_up_last = self.target_head(disc.layer_up_last, m)
            disc.num_classes = m.shape[0]
            return
        subs = [d for n, d in disc.named_children() if n.startswith('discriminator_')] or [disc]
        if not all(hasattr(d, 'model0') for d in subs):
            raise ValueError(f'{type(self).__name__} does not know how to map the classes of '
                             f'{type(disc).__name__}: expected an OASIS discriminator '
                             '(layer_up_last) or a PatchGAN (model0).')
        for d in subs:
            d.model0[0] = self.target_input_conv(d.model0[0], m)
            d.num_classes = m.shape[0]
        disc.num_classes = m.shape[0]

    def target_head(self, head, m):
        """The OASIS target head from the source head ``head`` (``N_s + 2`` outputs).

        Row 0 (fake) is copied; rows ``1..N_t + 1`` are ``m @ rows 1..N_s + 1``, i.e. don't care
        from don't care and target class t = sum_s A[t, s] * source row s; biases alike.
        """
        n_t1, n_s1 = m.shape
        if head.out_channels != n_s1 + 1:
            raise ValueError(f'The discriminator head has {head.out_channels} outputs; a source '
                             f'head has N_s + 2 = {n_s1 + 1} (fake + {n_s1} channels). Build '
                             'model.discriminator with the source num_classes.')
        new = nn.Conv2d(head.in_channels, n_t1 + 1, 1).to(head.weight)
        if self.init_discriminator_head:
            with torch.no_grad():
                w = head.weight[:, :, 0, 0]
                new.weight[:, :, 0, 0] = torch.cat([w[:1], m.to(w) @ w[1:]])
                if head.bias is not None:
                    new.bias.copy_(torch.cat([head.bias[:1], m.to(w) @ head.bias[1:]]))
                else:
                    new.bias.zero_()
        return new  # init_discriminator_head=False: PyTorch's default initialisation

    def target_input_conv(self, conv, m):
        """A PatchGAN input conv reading ``[y_t, img]`` from one reading ``[y_s, img]``:
        label weights ``W_t[:, t] = sum_s m[t, s] W_s[:, s]``, image weights and bias copied."""
        if 'weight_orig' in dict(conv.named_parameters()):
            raise ValueError('CAT cannot map a spectral-normalised PatchGAN input conv.')
        n_t1, n_s1 = m.shape
        img_ch = conv.in_channels - n_s1
        if img_ch <= 0:
            raise ValueError(f'The PatchGAN input conv reads {conv.in_channels} channels, fewer '
                             f'than the {n_s1} source label channels.')
        new = nn.Conv2d(n_t1 + img_ch, conv.out_channels, conv.kernel_size, conv.stride,
                        conv.padding, bias=conv.bias is not None).to(conv.weight)
        with torch.no_grad():
            w = conv.weight
            if self.init_discriminator_head:
                new.weight[:, :n_t1] = torch.einsum('oshw,ts->othw', w[:, :n_s1], m.to(w))
            new.weight[:, n_t1:] = w[:, n_s1:]
            if conv.bias is not None:
                new.bias.copy_(conv.bias)
        return new

    # ------------------------------------------------------------------ stages
    def in_stage1(self):
        return MessageHub.get_current_instance().get_info('iter', 0) < self.stage1_iters

    def register_stages(self, synth):
        """Stage 1 (iterations < stage1_iters): the source generator's body and the
        discriminator's body run frozen, so only the affinity layer and the D head train.

        A forward pre-hook on the discriminator (whose forward opens every training step)
        sets the stage; the discriminator's body is frozen around its own forward while
        gradients are on, and its flags restored after.
        """
        disc = synth.discriminator
        if disc is None or not hasattr(disc, 'layer_up_last'):
            raise ValueError('stage1_iters needs an OASIS discriminator (head layer_up_last).')
        gen = synth.generator
        body = [p for n, p in disc.named_parameters() if not n.startswith('layer_up_last.')]
        gen.train_body = not self.in_stage1()

        def before(module, args):
            stage1 = self.in_stage1()
            gen.train_body = not stage1
            if self._stage != stage1:
                self._stage = stage1
                self.logger.info(f'{type(self).__name__}: stage {1 if stage1 else 2} '
                                 f'({"affinity layer + discriminator head" if stage1 else "all"}'
                                 ' trains)')
            if stage1 and torch.is_grad_enabled():
                self._saved_flags = [(p, p.requires_grad) for p in body]
                for p in body:
                    p.requires_grad_(False)

        def after(module, args, output):
            if self._saved_flags is not None:
                for p, flag in self._saved_flags:
                    p.requires_grad_(flag)
                self._saved_flags = None

        disc.register_forward_pre_hook(before)
        disc.register_forward_hook(after)

