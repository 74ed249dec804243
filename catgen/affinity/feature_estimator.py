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

Backbones (``backbone=``) are catgen's frozen pretrained wrappers (:mod:`catgen.pretrained`,
built with :func:`~catgen.pretrained.build_pretrained`); the estimator reads their
``feature_map(img uint8[B, 3, H, W]) -> Tensor[B, D, h, w]``:

- ``dict(type='timm', model_name='vit_small_patch16_224.dino', checkpoint=<LOCAL file>[,
  input_size, mean, std])``: :class:`~catgen.pretrained.TimmBackbone` (ViT patch tokens on the
  patch grid, or a CNN's feature map); nothing is downloaded, a missing file is a
  :class:`FileNotFoundError` that names it and where to put it.
- ``dict(type='oasis_discriminator', config=<synthesizer config>, checkpoint=<catgen
  checkpoint>, layers=('body_up.<n-1>',))``:
  :class:`~catgen.pretrained.OASISDiscriminatorSegmenter`,
  blocks of the source OASIS U-Net discriminator (encoder ``body_down.*``, decoder
  ``body_up.*``), resized to the largest of them and concatenated. Default: the last decoder
  block, the features its class head reads.
- ``dict(type='mmseg', config=..., checkpoint=..., feature_index=-1)``:
  :class:`~catgen.pretrained.MMSegSegmenter`, output ``feature_index`` (alias ``index``) of an
  mmseg segmentor's ``extract_feat`` (backbone + neck).
- a callable / ``nn.Module``: ``float Tensor[B, 3, H, W]`` RGB in ``[-1, 1]`` -> ``Tensor[B, D,
  h, w]`` (tests, custom models).

Per-data-set prototype sums are cached on disk (:class:`catgen.utils.cache.DiskCache`, kind
``protos``), keyed by the backbone's ``cache_key`` (content hashes of checkpoint and config; an
injected module by its class and state-dict hash; computed without building it), the image and
label files (path, size, mtime) and the prototype settings.
"""
import warnings

import numpy as np

from catgen.pretrained import build_pretrained, pretrained_cache_key
from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator, spec_settings
from .samples import batches_by_size, build_image_dataset, dataset_samples, files_key, read_sample

LABEL_DOWNSAMPLE = ('majority', 'nearest', 'area')
#: score given to source classes without any pixel (finite, so rows stay valid; exp() -> 0).
NO_SOURCE_SCORE = -1e6

__all__ = ['FeatureAffinity', 'labels_to_weights', 'LABEL_DOWNSAMPLE']


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
    return {'backbone': bb_key, 'files': files_key(infos, ('img_path', 'seg_map_path')),
            'settings': settings, 'version': 2}


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
        loaded = build_pretrained(spec, self.device, what='backbone')
        if spec is self.backbone:
            self._loaded = loaded
        return loaded

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
                f = bb.feature_map(x.contiguous())
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
        bb_key = pretrained_cache_key(spec) if cache.enabled else None
        key = None
        if bb_key is not None:
            key = cache.key(**_prototype_key(bb_key, infos, settings))
            hit = cache.load('protos', key)
            if hit is not None:
                return dict(hit, classes=classes)
        bb = self._get_backbone(spec)
        arrays = self._compute_sums(bb, infos, num_channels, desc)
        if key is None and cache.enabled and bb.cache_key() is not None:
            key = cache.key(**_prototype_key(bb.cache_key(), infos, settings))
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
