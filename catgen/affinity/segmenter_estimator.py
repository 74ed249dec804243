"""SegmenterAffinity: class affinity from a source-trained segmenter run on target images.

A segmenter that knows the N_s source classes segments every target training image; for each
target class ``t``, the histogram of the predicted source classes over the pixels labelled ``t``
is the row of ``t`` (counts -> rows with :func:`~catgen.affinity.postprocess.rows_from_counts`:
top-k, uniform mix and the zero-row rule for target classes without any counted pixel). Pixels
that are don't care in the target label map, and pixels whose top softmax probability is below
``min_confidence``, are not counted.

Segmenters (``segmenter=``):

- ``dict(type='mmseg', config=..., checkpoint=...)``: an mmsegmentation segmentor built offline
  with :func:`catgen.utils.setup_env.init_mmseg_model` (default scope guarded, weights through
  ``safe_load``). Its outputs are named by ``class_map`` or by the checkpoint's
  ``meta.dataset_meta.classes`` and must map onto the source classes. Images are given to it as
  mmseg's ``LoadImageFromFile`` reads them (BGR, ``input_order='bgr'``) and go through its own
  ``data_preprocessor``.
- ``dict(type='oasis_discriminator', config=<synthesizer config>, checkpoint=<catgen
  checkpoint>)``: the source OASIS discriminator, built from ``model.discriminator`` of the
  config, with the ``discriminator.*`` weights of the checkpoint. Its logits are
  ``[fake, don't care, class 1, ..., class N_s]`` (docs/conventions.md); the fake channel and the
  source don't-care channel are dropped, so the argmax runs over the real source classes. Their
  names come from ``class_map``, the checkpoint's ``meta.dataset_meta.classes`` or the config's
  training data set.
- an ``nn.Module`` or any callable (escape hatch for tests and custom models): it takes
  ``float Tensor[B, 3, H, W]`` RGB in ``[-1, 1]`` and returns logits ``Tensor[B, K, h, w]``
  (resized to H x W when smaller); output ``k`` is ``source_classes[k]`` unless ``class_map``
  says otherwise.

``class_map`` (any segmenter): a list with one entry per segmenter output (a source class name,
or None to ignore pixels predicted as that output), or a dict ``{output name or index: source
name or None}`` (outputs not in it keep their own name).

Target images come from ``dataset``: a data set config (built with ``catgen.registry.DATASETS``,
e.g. ``dict(type='SynthScenesDataset', domain='target', split='train', num_shots=100)``) or a
built catgen data set. Images and label maps are read from its data infos (``img_path``,
``seg_map_path``, channel space via ``label_shift``); its pipeline is not run.

Predictions (the argmax output and its probability per pixel) are cached on disk
(:class:`~catgen.affinity.base_estimator.AffinityCache`, kind ``segpred``), keyed by the
segmenter (content hash of the checkpoint and config files; for an injected module, its class
and a hash of its state dict) and the image files (path, size and mtime of each). Label maps,
``min_confidence``, ``class_map`` and the post-processing are applied after the cache, so
changing them does not re-run the segmenter.
"""
import hashlib
import os
from pathlib import Path

import numpy as np

from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator, FileRef, spec_settings

SEGMENTER_TYPES = ('mmseg', 'oasis_discriminator')

__all__ = ['SegmenterAffinity', 'build_image_dataset', 'dataset_samples', 'read_sample',
           'load_segmenter', 'SEGMENTER_TYPES']


# --------------------------------------------------------------------------- data sets
def build_image_dataset(dataset, what='dataset'):
    """A catgen data set from a config dict (its pipeline is dropped: files are read directly),
    or the data set itself.

    Raises:
        ValueError: ``dataset`` is None (says what to pass).
    """
    if dataset is None:
        raise ValueError(f'No {what}: pass {what}=dict(type=\'SynthScenesDataset\', '
                         f"data_root='data/synthscenes', domain='target', split='train', "
                         f'num_shots=100) (any catgen data set config) or a built data set.')
    if not isinstance(dataset, dict):
        return dataset
    import catgen.datasets  # noqa: F401  (registers the data sets)
    from catgen.registry import DATASETS
    from catgen.utils.setup_env import guarded_default_scope
    cfg = {k: v for k, v in dict(dataset).items() if k != 'pipeline'}
    with guarded_default_scope('catgen'):
        return DATASETS.build(cfg)


def dataset_samples(dataset):
    """``(infos, class_names)``: the data infos (dicts with ``img_path``, ``seg_map_path``,
    ``num_classes``, ``label_shift``) and the real class names in channel order (channel
    ``c + 1`` is ``class_names[c]``; channel 0 is don't care)."""
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if not infos:
        raise ValueError(f'The data set {type(dataset).__name__} is empty; the affinity '
                         f'estimator needs images with label maps.')
    for key in ('img_path', 'seg_map_path'):
        if key not in infos[0]:
            raise ValueError(f'Data infos of {type(dataset).__name__} have no {key!r}; the '
                             f'affinity estimators read image / label-map pairs from catgen '
                             f'data sets (BaseSISDataset and subclasses).')
    classes = list(dataset.metainfo['classes'])
    return infos, [str(c) for c in classes[1:]]


def files_key(infos):
    """Cache-key part naming the image files: (path, size, mtime_ns) of each, hashed."""
    h = hashlib.sha256()
    for info in infos:
        p = Path(info['img_path'])
        st = p.stat()
        h.update(f'{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n'.encode())
    return {'num_images': len(infos), 'files_sha256': h.hexdigest()}


def read_sample(info, image=True):
    """``(img uint8[H, W, 3] RGB or None, label int64[H, W] in channel space)``."""
    from catgen.datasets.transforms.loading import (map_to_channel_space, read_label_map,
                                                    read_rgb_image)
    img = read_rgb_image(info['img_path']) if image else None
    raw = read_label_map(info['seg_map_path'])
    label = map_to_channel_space(raw, int(info['num_classes']), int(info.get('label_shift', 0)),
                                 info['seg_map_path'])
    if img is not None and img.shape[:2] != label.shape:
        raise ValueError(f'Image {info["img_path"]} is {img.shape[:2]} but its label map '
                         f'{info["seg_map_path"]} is {label.shape}; they must be the same size.')
    return img, label


def batches_by_size(n_items, shapes, batch_size):
    """Index lists of consecutive items of equal shape, at most ``batch_size`` long."""
    out, cur = [], []
    for i in range(n_items):
        if cur and (len(cur) == batch_size or shapes[i] != shapes[cur[0]]):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def label_channel_to_target(dataset_classes, target_classes, what='dataset'):
    """int64[num_channels]: channel -> index in ``target_classes`` (-1 for don't care and for
    data set classes that are not target classes).

    Raises:
        ValueError: a target class is not a class of the data set.
    """
    missing = [t for t in target_classes if t not in dataset_classes]
    if missing:
        raise ValueError(f'Target classes {missing} are not classes of the {what} '
                         f'({list(dataset_classes)}). Estimate for the data set\'s classes (or a '
                         f'subset of them), or give the data set whose label maps hold them.')
    lut = np.full(len(dataset_classes) + 1, -1, dtype=np.int64)
    for c, name in enumerate(dataset_classes):
        if name in target_classes:
            lut[c + 1] = list(target_classes).index(name)
    return lut


# --------------------------------------------------------------------------- segmenters
class LoadedSegmenter:
    """A segmenter ready to run: ``fn(img uint8 Tensor[B, 3, H, W] RGB) -> logits
    Tensor[B, K, h, w]``, the names of its K outputs (or None), a json-able cache key (with
    :class:`FileRef` parts, or None = not cacheable) and a description for ``meta``."""

    def __init__(self, fn, names, key, describe, module=None):
        self.fn = fn
        self.names = None if names is None else [str(n) for n in names]
        self.key = key
        self.describe = describe
        self.module = module


def module_key(module):
    """Cache key of an injected module: its class and a sha256 of its state dict (parameters
    and buffers); None for a plain callable (not cached)."""
    import torch
    if not isinstance(module, torch.nn.Module):
        return None
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    cls = type(module)
    return {'module': f'{cls.__module__}.{cls.__qualname__}', 'state_sha256': h.hexdigest()}


def _check_file(path, what, hint):
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f'{what} not found: {p}. {hint}')
    return p


def _mmseg_segmenter(spec, device):
    import torch
    from catgen.utils.setup_env import init_mmseg_model
    config, checkpoint = spec.get('config'), spec.get('checkpoint')
    if config is None or checkpoint is None:
        raise ValueError("segmenter=dict(type='mmseg', ...) needs config=<mmseg config file> and "
                         "checkpoint=<.pth trained with it>, e.g. configs/segmenters/"
                         "fcn_synthscenes-source.py and work_dirs/segmenters/"
                         "fcn_synthscenes-source/iter_2000.pth (tools/train_segmenter.py).")
    _check_file(checkpoint, 'mmseg segmenter checkpoint',
                f'Train it with python tools/train_segmenter.py {config} (it writes to '
                f'work_dirs/segmenters/), or pass the path of an existing .pth.')
    model = init_mmseg_model(config, checkpoint, device=device)
    meta = getattr(model, 'dataset_meta', None) or {}
    names = meta.get('classes')
    num_out = getattr(model.decode_head, 'out_channels', None) or model.decode_head.num_classes
    if names is not None and len(names) != num_out:
        raise ValueError(f'The mmseg segmenter {checkpoint} has {num_out} outputs but its '
                         f'dataset_meta names {len(names)} classes; pass class_map=[one source '
                         f'class (or None) per output].')
    order = spec.get('input_order', 'bgr')
    if order not in ('bgr', 'rgb'):
        raise ValueError(f"input_order={order!r}: use 'bgr' (mmseg's LoadImageFromFile, the "
                         f"default) or 'rgb' (what the segmenter's training pipeline fed it).")
    from mmseg.structures import SegDataSample
    pre = model.data_preprocessor

    def fn(img):
        h, w = img.shape[-2:]
        x = img[:, [2, 1, 0]] if order == 'bgr' else img
        samples = [SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                               pad_shape=(h, w))) for _ in range(len(x))]
        data = pre(dict(inputs=list(x.to(device)), data_samples=samples), False)
        metas = [s.metainfo for s in data['data_samples']]
        with torch.no_grad():
            logits = model.inference(data['inputs'], metas)
        return logits[..., :h, :w]

    key = {'type': 'mmseg', 'checkpoint': FileRef(checkpoint), 'input_order': order,
           'config': FileRef(config) if isinstance(config, (str, os.PathLike)) else str(config)}
    describe = {'type': 'mmseg', 'config': str(config), 'checkpoint': str(checkpoint)}
    return LoadedSegmenter(fn, names, key, describe, model)


def build_oasis_discriminator(config, checkpoint, prefix='discriminator.', device='cpu'):
    """Build ``model.discriminator`` of a catgen synthesizer config and load the ``prefix*``
    weights of a catgen checkpoint (``safe_load``, checked).

    Returns:
        ``(discriminator in eval mode, checkpoint dict, source class names or None)``; the
        names (real classes, channel order) come from the checkpoint's
        ``meta.dataset_meta.classes`` or else the config's training data set.
    """
    from mmengine.config import Config

    from catgen.registry import MODELS
    from catgen.utils.checkpoint import load_state_dict_checked, safe_load
    from catgen.utils.setup_env import guarded_default_scope
    if config is None or checkpoint is None:
        raise ValueError("The OASIS discriminator needs config=<synthesizer config, e.g. "
                         "configs/oasis/oasis_synthscenes-source.py> and checkpoint=<catgen "
                         "checkpoint with discriminator.* weights, e.g. work_dirs/"
                         "oasis_synthscenes-source/iter_1000.pth>.")
    _check_file(checkpoint, 'OASIS checkpoint',
                f'Train the source model with python tools/train.py {config}, or pass the path '
                f'of an existing checkpoint.')
    cfg = config if isinstance(config, Config) else Config.fromfile(
        _check_file(config, 'synthesizer config', 'Pass the config the checkpoint was trained '
                    'with, e.g. configs/oasis/oasis_synthscenes-source.py.'))
    d_cfg = cfg.get('model', {}).get('discriminator')
    if not d_cfg or 'OASIS' not in str(d_cfg.get('type', '')):
        raise ValueError(f'{config}: model.discriminator is {d_cfg and d_cfg.get("type")!r}; '
                         f'the OASIS discriminator segmenter needs an OASIS synthesizer config '
                         f'(model.discriminator.type=\'OASISDiscriminator\').')
    import catgen.models  # noqa: F401
    with guarded_default_scope('catgen'):
        disc = MODELS.build(d_cfg)
    ckpt = safe_load(checkpoint, map_location='cpu')
    state = ckpt['state_dict'] if isinstance(ckpt, dict) and 'state_dict' in ckpt else ckpt
    d_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not d_state:
        heads = sorted({k.split('.', 1)[0] for k in state})
        raise ValueError(f'{checkpoint} holds no "{prefix}*" weights (its keys start with '
                         f'{heads}); pass a catgen OASIS checkpoint (tools/train.py) or set '
                         f'prefix= to the discriminator\'s key prefix.')
    load_state_dict_checked(disc, d_state, source=f'{checkpoint} ({prefix}*)')
    disc.to(device).eval()
    names = None
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    dmeta = meta.get('dataset_meta') if isinstance(meta, dict) else None
    if isinstance(dmeta, dict) and dmeta.get('classes'):
        names = list(dmeta['classes'])[1:]
    else:
        ds_cfg = cfg.get('train_dataloader', {}).get('dataset')
        if ds_cfg is not None:
            try:
                ds = build_image_dataset(ds_cfg.to_dict() if hasattr(ds_cfg, 'to_dict')
                                         else dict(ds_cfg))
                names = list(ds.metainfo['classes'])[1:]
            except (FileNotFoundError, ValueError, KeyError):
                names = None
    if names is not None and len(names) + 1 != disc.num_classes:
        raise ValueError(f'{checkpoint}: the discriminator has {disc.num_classes} semantic '
                         f'channels (don\'t care included) but the class list has {len(names)} '
                         f'real classes; pass class_map=[one source class per real channel].')
    return disc, ckpt, names


def _oasis_segmenter(spec, device):
    import torch
    import torch.nn.functional as F
    config, checkpoint = spec.get('config'), spec.get('checkpoint')
    prefix = spec.get('prefix', 'discriminator.')
    dontcare = int(spec.get('dontcare_index', 0))
    disc, _, names = build_oasis_discriminator(config, checkpoint, prefix, device)
    n_sem = disc.num_classes
    keep = [1 + c for c in range(n_sem) if c != dontcare]  # drop fake (0) and don't care
    mult = 2 ** disc.num_blocks

    def fn(img):
        h, w = img.shape[-2:]
        x = img.to(device).float() / 127.5 - 1.0
        ph, pw = (-h) % mult, (-w) % mult
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode='replicate')
        with torch.no_grad():
            logits = disc(x)
        return logits[:, keep, :h, :w]

    if names is not None:  # channel c names: ['<don't care>', *names][c]
        full = ['<dontcare>', *names]
        names = [full[c] for c in range(n_sem) if c != dontcare]
    key = {'type': 'oasis_discriminator', 'checkpoint': FileRef(checkpoint), 'prefix': prefix,
           'dontcare_index': dontcare,
           'config': FileRef(config) if isinstance(config, (str, os.PathLike)) else str(config)}
    describe = {'type': 'oasis_discriminator', 'config': str(config),
                'checkpoint': str(checkpoint)}
    return LoadedSegmenter(fn, names, key, describe, disc)


def _callable_segmenter(obj, device):
    import torch

    def fn(img):
        x = img.to(device).float() / 127.5 - 1.0
        with torch.no_grad():
            return obj(x)

    names = getattr(obj, 'classes', None)
    key = module_key(obj)
    if isinstance(obj, torch.nn.Module):
        obj.eval()
    describe = {'type': 'module', 'class': type(obj).__qualname__}
    return LoadedSegmenter(fn, names, key, describe, obj)


def load_segmenter(segmenter, device='cpu'):
    """A :class:`LoadedSegmenter` from a segmenter spec (see the module docstring)."""
    if segmenter is None:
        raise ValueError("No segmenter: pass segmenter=dict(type='mmseg', config=..., "
                         "checkpoint=...) or dict(type='oasis_discriminator', config=..., "
                         "checkpoint=...), or an nn.Module.")
    if isinstance(segmenter, dict):
        kind = segmenter.get('type')
        if kind == 'mmseg':
            return _mmseg_segmenter(segmenter, device)
        if kind == 'oasis_discriminator':
            return _oasis_segmenter(segmenter, device)
        raise ValueError(f'segmenter type {kind!r} is unknown; use one of {SEGMENTER_TYPES} '
                         f'(or pass an nn.Module / callable).')
    if callable(segmenter):
        return _callable_segmenter(segmenter, device)
    raise TypeError(f'segmenter must be a dict with type in {SEGMENTER_TYPES}, an nn.Module or '
                    f'a callable; got {type(segmenter).__name__}.')


def resolve_class_map(out_names, num_out, source_classes, class_map=None, what='segmenter'):
    """int64[num_out]: segmenter output -> index in ``source_classes`` (-1 = ignored).

    Raises:
        ValueError: outputs cannot be named, name unknown source classes, or the outputs do not
            cover the same classes as ``source_classes``; the message lists the differences.
    """
    source_classes = list(source_classes)
    if class_map is not None and not isinstance(class_map, dict):
        class_map = list(class_map)
        if len(class_map) != num_out:
            raise ValueError(f'class_map has {len(class_map)} entries but the {what} has '
                             f'{num_out} outputs; give one source class name (or None) per '
                             f'output.')
        targets = class_map
    else:
        names = list(out_names) if out_names is not None else None
        if names is None:
            if num_out != len(source_classes):
                raise ValueError(
                    f'The {what} has {num_out} outputs and no class names, but there are '
                    f'{len(source_classes)} source classes. Pass class_map=[one source class '
                    f'name (or None) per output].')
            names = list(source_classes)
        if len(names) != num_out:
            raise ValueError(f'The {what} has {num_out} outputs but {len(names)} class names.')
        targets = list(names)
        for k, v in (class_map or {}).items():
            if isinstance(k, int) and not isinstance(k, bool):
                if not 0 <= k < num_out:
                    raise ValueError(f'class_map key {k} is not an output index (0..'
                                     f'{num_out - 1}) of the {what}.')
                targets[k] = v
            elif k in names:
                targets[names.index(k)] = v
            else:
                raise ValueError(f'class_map key {k!r} is not an output of the {what} (its '
                                 f'outputs: {names}).')
    unknown = [t for t in targets if t is not None and t not in source_classes]
    used = [t for t in targets if t is not None]
    # With an explicit class_map, source classes that no output maps to are allowed (their
    # column stays 0); names taken from the model must cover the source classes.
    missing = [] if class_map is not None else [s for s in source_classes if s not in used]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f'outputs named {unknown} are not source classes')
        if missing:
            parts.append(f'source classes {missing} are no output of it')
        raise ValueError(
            f'The {what}\'s classes do not match the source classes: ' + '; '.join(parts) +
            f'. Its outputs: {targets}; source classes: {source_classes}. Use the segmenter '
            f'trained on the source data set, or pass class_map (a list with one source class '
            f'or None per output, or a dict {{output: source class or None}}).')
    return np.array([-1 if t is None else source_classes.index(t) for t in targets],
                    dtype=np.int64)


# --------------------------------------------------------------------------- estimator
@AFFINITY_ESTIMATORS.register_module()
class SegmenterAffinity(BaseAffinityEstimator):
    """Rows = histograms of a source segmenter's predictions over each target class's pixels.

    Args:
        segmenter: ``dict(type='mmseg', config, checkpoint[, input_order])``,
            ``dict(type='oasis_discriminator', config, checkpoint[, prefix, dontcare_index])``,
            or an ``nn.Module`` / callable (see the module docstring). May instead be passed to
            :meth:`estimate` as ``segmenter=``.
        dataset: the target images: a data set config or a built data set (may instead be
            passed to :meth:`estimate` as ``target_dataset=``).
        class_map: names the segmenter's outputs (see the module docstring).
        min_confidence: pixels whose top softmax probability is below it are not counted.
        temperature: ``row ∝ counts ** (1 / T)`` (T < 1 sharpens, T > 1 flattens; 1 = plain
            histogram).
        top_k, uniform_mix, zero_row, cache_dir, use_cache: see :class:`BaseAffinityEstimator`.
        batch_size: images per segmenter call (equal sizes are batched).
        device: torch device of the segmenter.
        progress: a tqdm bar over images.
    """

    name = 'SegmenterAffinity'

    def __init__(self, segmenter=None, dataset=None, class_map=None, min_confidence=0.0,
                 temperature=1.0, top_k=None, uniform_mix=0.0, zero_row='uniform',
                 batch_size=16, device='cpu', progress=True, cache_dir=None, use_cache=True):
        super().__init__(temperature=temperature, top_k=top_k, uniform_mix=uniform_mix,
                         zero_row=zero_row, cache_dir=cache_dir, use_cache=use_cache)
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f'min_confidence={min_confidence!r} must be in [0, 1] (a softmax '
                             f'probability; 0 counts every pixel).')
        if int(batch_size) < 1:
            raise ValueError(f'batch_size={batch_size!r} must be >= 1.')
        self.segmenter = segmenter
        self.dataset = dataset
        self.class_map = class_map
        self.min_confidence = float(min_confidence)
        self.batch_size = int(batch_size)
        self.device = device
        self.progress = progress
        self._loaded = None

    def settings(self):
        s = super().settings()
        seg = spec_settings(self.segmenter)
        cmap = self.class_map
        if isinstance(cmap, dict):
            cmap = {str(k): v for k, v in cmap.items()}
        s.update(segmenter=seg, class_map=cmap, min_confidence=self.min_confidence)
        return s

    # ------------------------------------------------------------------ predictions
    def _get_segmenter(self, segmenter):
        if segmenter is self.segmenter and self._loaded is not None:
            return self._loaded
        loaded = load_segmenter(segmenter, self.device)
        if segmenter is self.segmenter:
            self._loaded = loaded
        return loaded

    def _predict(self, seg, infos):
        """dict with ``pred`` (uint8 or int32[P]: argmax output), ``conf`` (float16[P]: its
        softmax probability), ``shapes`` (int64[n, 2]) and ``num_out`` (outputs K), for every
        pixel of every image, flattened in order."""
        import torch
        import torch.nn.functional as F
        from PIL import Image
        shapes = []
        for info in infos:
            with Image.open(info['img_path']) as im:
                shapes.append((im.height, im.width))
        groups = batches_by_size(len(infos), shapes, self.batch_size)
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=len(infos), desc='segmenting target images', unit='img')
        preds, confs, num_out = [], [], None
        try:
            for idx in groups:
                imgs = np.stack([read_sample(infos[i])[0] for i in idx])
                x = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
                logits = seg.fn(x)
                if not torch.is_tensor(logits) or logits.ndim != 4 or logits.shape[0] != len(idx):
                    raise ValueError(
                        f'The segmenter returned {getattr(logits, "shape", type(logits))} for '
                        f'{len(idx)} images; it must return logits Tensor[B, K, H, W].')
                if num_out is None:
                    num_out = logits.shape[1]
                elif logits.shape[1] != num_out:
                    raise ValueError(f'The segmenter returned {logits.shape[1]} channels, '
                                     f'earlier {num_out}.')
                h, w = shapes[idx[0]]
                logits = logits.float()
                if tuple(logits.shape[-2:]) != (h, w):
                    logits = F.interpolate(logits, size=(h, w), mode='bilinear',
                                           align_corners=False)
                prob = logits.softmax(dim=1)
                conf, pred = prob.max(dim=1)
                preds.append(pred.cpu().numpy().reshape(-1))
                confs.append(conf.cpu().numpy().reshape(-1))
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        dtype = np.uint8 if num_out <= 256 else np.int32
        return {'pred': np.concatenate(preds).astype(dtype),
                'conf': np.concatenate(confs).astype(np.float16),
                'shapes': np.asarray(shapes, dtype=np.int64),
                'num_out': np.int64(num_out)}

    def predictions(self, infos, segmenter=None, work_dir=None):
        """Cached per-pixel predictions of ``segmenter`` (default: the configured one) on the
        images of ``infos``: dict with ``pred``, ``conf``, ``shapes``, ``num_out``."""
        spec = self.segmenter if segmenter is None else segmenter
        cache = self.cache(work_dir)
        key_parts = None
        if cache.enabled:
            key_parts = self._key_parts(spec, infos)
        if key_parts is not None:
            key = cache.key(**key_parts)
            hit = cache.load('segpred', key)
            if hit is not None:
                return hit, None
        seg = self._get_segmenter(spec)
        arrays = self._predict(seg, infos)
        if seg.names is not None:
            arrays['names'] = np.array(seg.names, dtype=str)
        if key_parts is not None and seg.key is not None:
            cache.save('segpred', key, arrays)
        return arrays, seg

    def _key_parts(self, spec, infos):
        """Cache key parts without loading the model (None when not cacheable)."""
        if isinstance(spec, dict):
            kind = spec.get('type')
            if kind not in SEGMENTER_TYPES:
                return None
            ckpt, config = spec.get('checkpoint'), spec.get('config')
            if ckpt is None or not Path(ckpt).is_file():
                return None  # loading will raise the helpful error
            seg_key = {'type': kind, 'checkpoint': FileRef(ckpt),
                       'config': FileRef(config) if isinstance(config, (str, os.PathLike))
                       and Path(config).is_file() else str(config)}
            if kind == 'mmseg':
                seg_key['input_order'] = spec.get('input_order', 'bgr')
            else:
                seg_key['prefix'] = spec.get('prefix', 'discriminator.')
                seg_key['dontcare_index'] = int(spec.get('dontcare_index', 0))
        else:
            seg_key = module_key(spec)
            if seg_key is None:
                return None
        return {'segmenter': seg_key, 'images': files_key(infos), 'version': 1}

    # ------------------------------------------------------------------ estimate
    def count(self, target_classes, source_classes, work_dir=None, dataset=None,
              segmenter=None):
        """``(counts float64[N_t, N_s], info dict)``: pixels of each target class predicted as
        each source class."""
        ds = build_image_dataset(dataset if dataset is not None else self.dataset,
                                 'target dataset')
        infos, ds_classes = dataset_samples(ds)
        t_lut = label_channel_to_target(ds_classes, target_classes, 'target data set')
        arrays, seg = self.predictions(infos, segmenter, work_dir)
        num_out = int(arrays['num_out'])
        if seg is not None:
            names = seg.names
        else:  # a cache hit: the output names were cached with the predictions
            names = [str(n) for n in arrays['names']] if 'names' in arrays else None
        s_lut = resolve_class_map(names, num_out, source_classes, self.class_map)
        n_t, n_s = len(target_classes), len(source_classes)
        counts = np.zeros(n_t * n_s, dtype=np.float64)
        pixels_seen = np.zeros(n_t, dtype=np.int64)
        offset = 0
        for info, (h, w) in zip(infos, arrays['shapes']):
            n = int(h) * int(w)
            pred = arrays['pred'][offset:offset + n].astype(np.int64)
            conf = arrays['conf'][offset:offset + n].astype(np.float32)
            offset += n
            _, label = read_sample(info, image=False)
            if label.shape != (h, w):
                raise ValueError(f'Label map {info["seg_map_path"]} is {label.shape} but the '
                                 f'cached prediction is {(int(h), int(w))}; delete the cache '
                                 f'or pass use_cache=False.')
            t = t_lut[label.reshape(-1)]
            s = s_lut[pred]
            pixels_seen += np.bincount(t[t >= 0], minlength=n_t)
            ok = (t >= 0) & (s >= 0) & (conf >= self.min_confidence)
            counts += np.bincount(t[ok] * n_s + s[ok], minlength=n_t * n_s)
        counts = counts.reshape(n_t, n_s)
        info = {'num_images': len(infos),
                'pixels': {t: int(p) for t, p in zip(target_classes, pixels_seen)},
                'pixels_counted': {t: int(c) for t, c in zip(target_classes, counts.sum(1))}}
        return counts, info

    def estimate(self, target_classes, source_classes, work_dir=None, target_dataset=None,
                 segmenter=None, **ctx):
        """The affinity matrix from segmenter histograms.

        Args:
            target_classes: N_t target names (classes of the target data set).
            source_classes: N_s source names (the segmenter's classes, see ``class_map``).
            work_dir: default cache location (``work_dir/.cache/affinity``).
            target_dataset, segmenter: used when not given at construction.

        Returns:
            AffinityMatrix; ``meta`` has the segmenter, ``num_images``, ``pixels`` (labelled
            pixels per target class) and ``pixels_counted``.
        """
        target_classes, source_classes = list(target_classes), list(source_classes)
        if self.dataset is None and target_dataset is None:
            build_image_dataset(None, 'target dataset')  # raises the helpful error
        counts, info = self.count(target_classes, source_classes, work_dir=work_dir,
                                  dataset=target_dataset if self.dataset is None else None,
                                  segmenter=segmenter if self.segmenter is None else None)
        sharpened = counts if self.temperature == 1.0 else counts ** (1.0 / self.temperature)
        return self._from_counts(sharpened, target_classes, source_classes, **info)
