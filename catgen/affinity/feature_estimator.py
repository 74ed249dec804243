"""FeatureAffinity: class affinity from per-class feature prototypes of an image backbone.

A backbone maps every image to a feature map ``[D, h, w]``. For each class, its **prototype** is
the mean feature inside its region: the label map (channel space) is brought to the feature
resolution (``label_downsample``: ``'majority'`` = the class covering most of each feature cell,
``'nearest'``, or ``'area'`` = each class weighted by the share of the cell it covers), don't-care
cells are left out, features are L2-normalised per location (``normalize_features=True``), summed
per class over all images and divided by the class's weight; the mean is L2-normalised. Source
prototypes come from source images (``source_dataset``), target prototypes from the few target
images (``target_dataset``). Scores are ``scale * cos(target, source)``, rows
``softmax(scores / temperature)`` with the shared post-processing (top-k, uniform mix). A target
class without pixels gets the zero-row rule; a source class without pixels gets no weight
(a warning names it).

Backbones (``backbone=``):

- ``dict(type='timm', model_name='vit_small_patch16_224.dino', checkpoint=<LOCAL file>)``: a timm
  model with local weights (``.pth``/``.bin`` read with ``safe_load``, or ``.safetensors``);
  nothing is downloaded, a missing file is a :class:`FileNotFoundError` that names it and where
  to put it. Images are resized to ``input_size`` (default: the model's) and normalised with the
  model's mean/std; ``forward_features`` gives patch tokens (ViT, prefix tokens dropped, reshaped
  to the patch grid) or a feature map (CNN).
- ``dict(type='oasis_discriminator', config=<synthesizer config>, checkpoint=<catgen
  checkpoint>, layers=('body_up.<n-1>',))``: blocks of the source OASIS U-Net discriminator
  (encoder ``body_down.*``, decoder ``body_up.*``), resized to the largest of them and
  concatenated. Default: the last decoder block, the features its class head reads.
- ``dict(type='mmseg', config=..., checkpoint=..., index=-1)``: output ``index`` of an mmseg
  segmentor's ``extract_feat`` (backbone + neck).
- a callable / ``nn.Module``: ``float Tensor[B, 3, H, W]`` RGB in ``[-1, 1]`` -> ``Tensor[B, D,
  h, w]`` (tests, custom models).

Per-data-set prototype sums are cached on disk (kind ``protos``), keyed by the backbone (content
hashes of checkpoint and config; an injected module by its class and state-dict hash), the image
and label files (path, size, mtime) and the prototype settings.
"""
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator, FileRef, spec_settings
from .segmenter_estimator import (batches_by_size, build_image_dataset, build_oasis_discriminator,
                                  dataset_samples, module_key, read_sample)

BACKBONE_TYPES = ('timm', 'oasis_discriminator', 'mmseg')
LABEL_DOWNSAMPLE = ('majority', 'nearest', 'area')
#: score given to source classes without any pixel (finite, so rows stay valid; exp() -> 0).
NO_SOURCE_SCORE = -1e6

__all__ = ['FeatureAffinity', 'load_backbone', 'labels_to_weights', 'BACKBONE_TYPES']


class LoadedBackbone:
    """``fn(img uint8 Tensor[B, 3, H, W] RGB) -> Tensor[B, D, h, w]``, a json-able cache key
    (or None: not cacheable) and a description."""

    def __init__(self, fn, key, describe):
        self.fn = fn
        self.key = key
        self.describe = describe


def _file_or_text(path):
    if isinstance(path, (str, os.PathLike)) and Path(path).is_file():
        return FileRef(path)
    return str(path)


def _timm_backbone(spec, device):
    import torch
    import torch.nn.functional as F
    name, checkpoint = spec.get('model_name'), spec.get('checkpoint')
    if not name:
        raise ValueError("backbone=dict(type='timm', ...) needs model_name (e.g. "
                         "'vit_small_patch16_224.dino') and checkpoint=<local weights file>.")
    if checkpoint is None or not Path(checkpoint).is_file():
        where = Path(checkpoint).resolve() if checkpoint else \
            Path('checkpoints') / 'timm' / f'{name}.safetensors'
        raise FileNotFoundError(
            f'timm weights for {name!r} not found: {checkpoint}. Nothing is downloaded on this '
            f'machine: on one with network access get the weights (e.g. the '
            f'model.safetensors of timm/{name} on the Hugging Face hub, or a DINO .pth) and put '
            f'the file at {where} (then pass checkpoint={str(where)!r}).')
    try:
        import timm
    except ImportError as err:
        raise ImportError('The timm backbone needs timm: pip install timm.') from err
    from catgen.utils.checkpoint import load_state_dict_checked, safe_load
    model = timm.create_model(name, pretrained=False, num_classes=0)
    if str(checkpoint).endswith('.safetensors'):
        from safetensors.torch import load_file
        state = load_file(str(checkpoint), device='cpu')
    else:
        state = safe_load(checkpoint, map_location='cpu')
    for wrapper in ('state_dict', 'model', 'teacher', 'student'):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    state = {k[len('backbone.'):] if k.startswith('backbone.') else k: v
             for k, v in state.items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:  # the head is removed (num_classes=0); every other weight must be there
        load_state_dict_checked(model, state, strict=True, source=str(checkpoint))
    load_state_dict_checked(model, {k: v for k, v in state.items() if k in expected},
                            strict=True, source=str(checkpoint))
    model.to(device).eval()
    data_cfg = timm.data.resolve_data_config({}, model=model)
    size = spec.get('input_size') or data_cfg['input_size'][1:]
    size = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(map(int, size))
    mean = torch.tensor(spec.get('mean') or data_cfg['mean']).view(1, 3, 1, 1)
    std = torch.tensor(spec.get('std') or data_cfg['std']).view(1, 3, 1, 1)
    prefix = int(getattr(model, 'num_prefix_tokens', 0))

    def fn(img):
        x = img.to(device).float() / 255.0
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
        x = (x - mean.to(x)) / std.to(x)
        with torch.no_grad():
            f = model.forward_features(x)
        if f.ndim == 3:  # tokens [B, prefix + h*w, D]
            f = f[:, prefix:]
            grid = getattr(getattr(model, 'patch_embed', None), 'grid_size', None)
            if grid is None or grid[0] * grid[1] != f.shape[1]:
                side = int(round(f.shape[1] ** 0.5))
                grid = (side, f.shape[1] // side)
            return f.transpose(1, 2).reshape(f.shape[0], f.shape[2], *grid)
        if f.ndim == 4 and f.shape[1] != model.num_features and f.shape[-1] == model.num_features:
            f = f.permute(0, 3, 1, 2)  # NHWC models
        return f

    key = {'type': 'timm', 'model_name': name, 'checkpoint': FileRef(checkpoint),
           'input_size': list(size)}
    return LoadedBackbone(fn, key, {'type': 'timm', 'model_name': name,
                                    'checkpoint': str(checkpoint)})


def _oasis_backbone(spec, device):
    import torch
    import torch.nn.functional as F
    config, checkpoint = spec.get('config'), spec.get('checkpoint')
    prefix = spec.get('prefix', 'discriminator.')
    disc, _, _ = build_oasis_discriminator(config, checkpoint, prefix, device)
    layers = spec.get('layers') or (f'body_up.{disc.num_blocks - 1}',)
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    known = [f'body_down.{i}' for i in range(disc.num_blocks)] + \
        [f'body_up.{i}' for i in range(disc.num_blocks)]
    unknown = [n for n in layers if n not in known]
    if unknown:
        raise ValueError(f'OASIS discriminator layers {unknown} do not exist; choose from '
                         f'{known}.')
    mult = 2 ** disc.num_blocks

    def fn(img):
        h, w = img.shape[-2:]
        if h % mult or w % mult:
            raise ValueError(f'The OASIS discriminator needs image sides divisible by {mult}; '
                             f'got {h}x{w}.')
        x = img.to(device).float() / 127.5 - 1.0
        with torch.no_grad():
            _, feats = disc(x, return_features=True)
        maps = [feats[n] for n in layers]
        size = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
        maps = [m if m.shape[-2:] == size else
                F.interpolate(m, size=tuple(size), mode='bilinear', align_corners=False)
                for m in maps]
        return torch.cat(maps, dim=1)

    key = {'type': 'oasis_discriminator', 'checkpoint': FileRef(checkpoint),
           'config': _file_or_text(config), 'prefix': prefix, 'layers': list(layers)}
    return LoadedBackbone(fn, key, {'type': 'oasis_discriminator', 'config': str(config),
                                    'checkpoint': str(checkpoint), 'layers': list(layers)})


def _mmseg_backbone(spec, device):
    import torch
    from catgen.utils.setup_env import init_mmseg_model
    config, checkpoint = spec.get('config'), spec.get('checkpoint')
    if config is None or checkpoint is None or not Path(checkpoint).is_file():
        raise FileNotFoundError(
            f'mmseg backbone checkpoint not found: {checkpoint}. Pass config=<mmseg config> and '
            f'checkpoint=<.pth>, e.g. train one with python tools/train_segmenter.py '
            f'configs/segmenters/fcn_synthscenes-source.py.')
    model = init_mmseg_model(config, checkpoint, device=device)
    index = int(spec.get('index', -1))
    order = spec.get('input_order', 'bgr')
    from mmseg.structures import SegDataSample
    pre = model.data_preprocessor

    def fn(img):
        h, w = img.shape[-2:]
        x = img[:, [2, 1, 0]] if order == 'bgr' else img
        samples = [SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
                   for _ in range(len(x))]
        data = pre(dict(inputs=list(x.to(device)), data_samples=samples), False)
        with torch.no_grad():
            feats = model.extract_feat(data['inputs'])
        return feats[index]

    key = {'type': 'mmseg', 'checkpoint': FileRef(checkpoint), 'config': _file_or_text(config),
           'index': index, 'input_order': order}
    return LoadedBackbone(fn, key, {'type': 'mmseg', 'config': str(config),
                                    'checkpoint': str(checkpoint), 'index': index})


def load_backbone(backbone, device='cpu'):
    """A :class:`LoadedBackbone` from a backbone spec (see the module docstring)."""
    if backbone is None:
        raise ValueError("No backbone: pass backbone=dict(type='timm', model_name=..., "
                         "checkpoint=<local file>), dict(type='oasis_discriminator', config=..., "
                         "checkpoint=...), dict(type='mmseg', config=..., checkpoint=...) or a "
                         "callable.")
    if isinstance(backbone, dict):
        kind = backbone.get('type')
        builders = {'timm': _timm_backbone, 'oasis_discriminator': _oasis_backbone,
                    'mmseg': _mmseg_backbone}
        if kind not in builders:
            raise ValueError(f'backbone type {kind!r} is unknown; use one of {BACKBONE_TYPES} '
                             f'(or pass a callable).')
        return builders[kind](backbone, device)
    if callable(backbone):
        import torch

        def fn(img):
            x = img.to(device).float() / 127.5 - 1.0
            with torch.no_grad():
                return backbone(x)

        if isinstance(backbone, torch.nn.Module):
            backbone.eval()
        return LoadedBackbone(fn, module_key(backbone),
                              {'type': 'module', 'class': type(backbone).__qualname__})
    raise TypeError(f'backbone must be a dict with type in {BACKBONE_TYPES} or a callable; got '
                    f'{type(backbone).__name__}.')


def labels_to_weights(labels, num_channels, size, mode='majority'):
    """Per-class weights of every feature cell.

    Args:
        labels: int64 Tensor[B, H, W] in channel space (0 = don't care).
        num_channels: channels incl. don't care.
        size: (h, w) of the feature map.
        mode: ``'majority'`` (the class with the largest area in the cell, weight 1),
            ``'nearest'`` (nearest-neighbour resampling), ``'area'`` (area fractions).

    Returns:
        float Tensor[B, num_channels - 1, h, w]: weights of the real classes (don't care dropped).
    """
    import torch
    import torch.nn.functional as F
    if mode not in LABEL_DOWNSAMPLE:
        raise ValueError(f'label_downsample={mode!r}: use one of {LABEL_DOWNSAMPLE}.')
    if mode == 'nearest':
        ids = F.interpolate(labels[:, None].float(), size=tuple(size), mode='nearest')[:, 0]
        onehot = F.one_hot(ids.long(), num_channels).permute(0, 3, 1, 2).float()
        return onehot[:, 1:]
    onehot = F.one_hot(labels, num_channels).permute(0, 3, 1, 2).float()
    frac = F.adaptive_avg_pool2d(onehot, tuple(size))
    if mode == 'area':
        return frac[:, 1:]
    win = F.one_hot(frac.argmax(dim=1), num_channels).permute(0, 3, 1, 2).float()
    return win[:, 1:]


def _prototype_key(bb_key, infos, settings):
    h = hashlib.sha256()
    for info in infos:
        for k in ('img_path', 'seg_map_path'):
            p = Path(info[k])
            st = p.stat()
            h.update(f'{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n'.encode())
    return {'backbone': bb_key, 'files_sha256': h.hexdigest(), 'num_images': len(infos),
            'settings': settings, 'version': 1}


@AFFINITY_ESTIMATORS.register_module()
class FeatureAffinity(BaseAffinityEstimator):
    """Rows = ``softmax(scale * cos(target prototype, source prototype) / temperature)``.

    Args:
        backbone: a backbone spec or callable (see the module docstring); may instead be passed
            to :meth:`estimate` as ``backbone=``.
        source_dataset: source images with label maps (config or data set), e.g. 200 source
            train images; or :meth:`estimate`'s ``source_dataset=``.
        target_dataset: the few-shot target training images; or :meth:`estimate`'s
            ``target_dataset=``.
        scale: cosines are multiplied by it before the softmax (100 as TextAffinity).
        label_downsample: ``'majority'``, ``'nearest'`` or ``'area'`` (see
            :func:`labels_to_weights`).
        normalize_features: L2-normalise every feature vector before averaging.
        temperature, top_k, uniform_mix, zero_row, cache_dir, use_cache: see
            :class:`BaseAffinityEstimator`.
        batch_size, device, progress: images per backbone call, torch device, tqdm bars.
    """

    name = 'FeatureAffinity'

    def __init__(self, backbone=None, source_dataset=None, target_dataset=None, scale=100.0,
                 label_downsample='majority', normalize_features=True, temperature=1.0,
                 top_k=None, uniform_mix=0.0, zero_row='uniform', batch_size=16, device='cpu',
                 progress=True, cache_dir=None, use_cache=True):
        super().__init__(temperature=temperature, top_k=top_k, uniform_mix=uniform_mix,
                         zero_row=zero_row, cache_dir=cache_dir, use_cache=use_cache)
        if label_downsample not in LABEL_DOWNSAMPLE:
            raise ValueError(f'label_downsample={label_downsample!r}: use one of '
                             f'{LABEL_DOWNSAMPLE}.')
        if not scale > 0:
            raise ValueError(f'scale={scale!r} must be > 0.')
        self.backbone = backbone
        self.source_dataset = source_dataset
        self.target_dataset = target_dataset
        self.scale = float(scale)
        self.label_downsample = label_downsample
        self.normalize_features = bool(normalize_features)
        self.batch_size = int(batch_size)
        self.device = device
        self.progress = progress
        self._loaded = None

    def settings(self):
        s = super().settings()
        bb = spec_settings(self.backbone)
        s.update(backbone=bb, scale=self.scale, label_downsample=self.label_downsample,
                 normalize_features=self.normalize_features)
        return s

    def _get_backbone(self, spec):
        if spec is self.backbone and self._loaded is not None:
            return self._loaded
        loaded = load_backbone(spec, self.device)
        if spec is self.backbone:
            self._loaded = loaded
        return loaded

    def _backbone_key(self, spec):
        """The backbone's cache key without loading it (None: not cacheable / not loadable)."""
        if isinstance(spec, dict):
            kind, ckpt = spec.get('type'), spec.get('checkpoint')
            if kind not in BACKBONE_TYPES or ckpt is None or not Path(ckpt).is_file():
                return None
            rest = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()
                    if k not in ('checkpoint', 'config')}
            return {'spec': {k: v if isinstance(v, (str, int, float, bool, list, type(None)))
                             else str(v) for k, v in rest.items()},
                    'checkpoint': FileRef(ckpt), 'config': _file_or_text(spec.get('config'))}
        return module_key(spec)

    def _compute_sums(self, bb, infos, num_channels, desc):
        import torch
        shapes = [read_sample(i, image=False)[1].shape for i in infos]
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=len(infos), desc=desc, unit='img')
        sums, weights = None, np.zeros(num_channels - 1)
        try:
            for idx in batches_by_size(len(infos), shapes, self.batch_size):
                pairs = [read_sample(infos[i]) for i in idx]
                x = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2)
                labels = torch.from_numpy(np.stack([p[1] for p in pairs]))
                f = bb.fn(x.contiguous())
                if not torch.is_tensor(f) or f.ndim != 4 or f.shape[0] != len(idx):
                    raise ValueError(f'The backbone returned {getattr(f, "shape", type(f))} for '
                                     f'{len(idx)} images; it must return Tensor[B, D, h, w].')
                f = f.float()
                if self.normalize_features:
                    f = torch.nn.functional.normalize(f, dim=1)
                w = labels_to_weights(labels, num_channels, f.shape[-2:], self.label_downsample)
                s = torch.einsum('bchw,bdhw->cd', w, f).double().cpu().numpy()
                sums = s if sums is None else sums + s
                weights += w.sum(dim=(0, 2, 3)).double().cpu().numpy()
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        return {'sums': sums, 'weights': weights}

    def prototype_sums(self, dataset, backbone=None, work_dir=None, desc='prototypes'):
        """Per-class feature sums and weights of a data set (cached).

        Returns:
            dict with ``sums`` float64[C, D], ``weights`` float64[C] (C real classes of the data
            set, channel order) and ``classes`` (their names).
        """
        spec = self.backbone if backbone is None else backbone
        ds = build_image_dataset(dataset, desc.replace(' ', '_'))
        infos, classes = dataset_samples(ds)
        num_channels = len(classes) + 1
        settings = dict(label_downsample=self.label_downsample,
                        normalize_features=self.normalize_features)
        cache = self.cache(work_dir)
        bb_key = self._backbone_key(spec) if cache.enabled else None
        key = None
        if bb_key is not None:
            key = cache.key(**_prototype_key(bb_key, infos, settings))
            hit = cache.load('protos', key)
            if hit is not None:
                return dict(hit, classes=classes)
        bb = self._get_backbone(spec)
        arrays = self._compute_sums(bb, infos, num_channels, desc)
        if key is not None:
            cache.save('protos', key, arrays)
        return dict(arrays, classes=classes)

    @staticmethod
    def _prototypes(sums, wanted, side):
        """float64[len(wanted), D] L2-normalised prototypes (NaN rows for unseen classes)."""
        missing = [c for c in wanted if c not in sums['classes']]
        if missing:
            raise ValueError(f'{side} classes {missing} are not classes of the {side} data set '
                             f'({sums["classes"]}); give the data set whose label maps hold them.')
        idx = [sums['classes'].index(c) for c in wanted]
        s, w = sums['sums'][idx], sums['weights'][idx]
        protos = np.full_like(s, np.nan)
        seen = w > 0
        protos[seen] = s[seen] / w[seen, None]
        norms = np.linalg.norm(protos[seen], axis=1, keepdims=True)
        protos[seen] = protos[seen] / np.maximum(norms, 1e-12)
        return protos, seen

    def similarity(self, target_classes, source_classes, work_dir=None, source_dataset=None,
                   target_dataset=None, backbone=None):
        """``(cos float64[N_t, N_s] with NaN rows/columns for unseen classes, info dict)``."""
        src_ds = self.source_dataset if self.source_dataset is not None else source_dataset
        tgt_ds = self.target_dataset if self.target_dataset is not None else target_dataset
        if src_ds is None:
            build_image_dataset(None, 'source_dataset')
        if tgt_ds is None:
            build_image_dataset(None, 'target_dataset')
        bb = backbone if self.backbone is None else None
        src = self.prototype_sums(src_ds, bb, work_dir, 'source prototypes')
        tgt = self.prototype_sums(tgt_ds, bb, work_dir, 'target prototypes')
        sp, s_seen = self._prototypes(src, list(source_classes), 'source')
        tp, t_seen = self._prototypes(tgt, list(target_classes), 'target')
        if sp.shape[1] != tp.shape[1]:
            raise ValueError(f'Source and target features differ in width ({sp.shape[1]} vs '
                             f'{tp.shape[1]}); use the same backbone for both.')
        cos = tp @ sp.T
        unseen_src = [c for c, ok in zip(source_classes, s_seen) if not ok]
        info = {'source_pixels': {c: float(w) for c, w in zip(
                    src['classes'], src['weights']) if c in source_classes},
                'target_pixels': {c: float(w) for c, w in zip(
                    tgt['classes'], tgt['weights']) if c in target_classes},
                'unseen_source_classes': unseen_src}
        return cos, t_seen, s_seen, info

    def estimate(self, target_classes, source_classes, work_dir=None, source_dataset=None,
                 target_dataset=None, backbone=None, **ctx):
        """The affinity matrix from prototype cosines.

        Args:
            target_classes, source_classes: the class names (classes of the two data sets).
            work_dir: default cache location.
            source_dataset, target_dataset, backbone: used when not given at construction.

        Returns:
            AffinityMatrix; ``meta['cosine']`` holds the cosines (None for unseen classes).
        """
        target_classes, source_classes = list(target_classes), list(source_classes)
        cos, t_seen, s_seen, info = self.similarity(target_classes, source_classes, work_dir,
                                                    source_dataset, target_dataset, backbone)
        if not s_seen.any():
            raise ValueError('None of the source classes has a pixel in the source data set; '
                             'check source_dataset.')
        if info['unseen_source_classes']:
            warnings.warn(f'Source classes {info["unseen_source_classes"]} have no pixel in the '
                          f'source images; they get no weight in any row. Use more source '
                          f'images to include them.', UserWarning, stacklevel=2)
        scores = self.scale * cos
        scores[:, ~s_seen] = NO_SOURCE_SCORE
        scores[~t_seen] = np.nan  # zero-row rule
        cosine = [[None if not (t and s) else round(float(c), 6)
                   for c, s in zip(row, s_seen)] for row, t in zip(cos, t_seen)]
        return self._from_scores(scores, target_classes, source_classes, cosine=cosine, **info)
