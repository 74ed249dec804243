"""SegmenterAffinity: class affinity from a source-trained segmenter run on target images.

A segmenter that knows the N_s source classes segments every target training image; for each
target class ``t``, the histogram of the predicted source classes over the pixels labelled ``t``
is the row of ``t`` (counts -> rows with :func:`~catgen.affinity.postprocess.rows_from_counts`:
top-k, uniform mix and the zero-row rule for target classes without any counted pixel). Pixels
that are don't care in the target label map, and pixels whose top softmax probability is below
``min_confidence``, are not counted.

Segmenters (``segmenter=``) are catgen's frozen pretrained wrappers (:mod:`catgen.pretrained`,
built with :func:`~catgen.pretrained.build_pretrained`):

- ``dict(type='mmseg', config=..., checkpoint=...[, input_order])``:
  :class:`~catgen.pretrained.MMSegSegmenter`, an mmsegmentation segmentor built offline. Its
  outputs are named by ``class_map`` or by the checkpoint's ``meta.dataset_meta.classes`` and
  must map onto the source classes.
- ``dict(type='oasis_discriminator', config=<synthesizer config>, checkpoint=<catgen
  checkpoint>[, prefix, dontcare_index])``: :class:`~catgen.pretrained.OASISDiscriminatorSegmenter`,
  the source OASIS discriminator with its fake and don't-care channels dropped, so the argmax
  runs over the real source classes (named by ``class_map``, the checkpoint's
  ``meta.dataset_meta.classes`` or the config's training data set).
- an ``nn.Module`` or any callable (escape hatch for tests and custom models): it takes
  ``float Tensor[B, 3, H, W]`` RGB in ``[-1, 1]`` and returns logits ``Tensor[B, K, h, w]``
  (resized to H x W when smaller); output ``k`` is ``source_classes[k]`` unless ``class_map``
  says otherwise (or it has a ``classes`` attribute).

``class_map`` (any segmenter): a list with one entry per segmenter output (a source class name,
or None to ignore pixels predicted as that output), or a dict ``{output name or index: source
name or None}`` (outputs not in it keep their own name).

Target images come from ``dataset``: a data set config (built with ``catgen.registry.DATASETS``,
e.g. ``dict(type='SynthScenesDataset', domain='target', split='train', num_shots=100)``) or a
built catgen data set. Images and label maps are read from its data infos (``img_path``,
``seg_map_path``, channel space via ``label_shift``); its pipeline is not run.

Predictions (the argmax output and its probability per pixel) are cached on disk
(:class:`catgen.utils.cache.DiskCache`, kind ``segpred``), keyed by the segmenter's
``cache_key`` (content hash of the checkpoint and config files; for an injected module, its class
and a hash of its state dict; computed without building the model) and the image files (path,
size and mtime of each). Label maps,
``min_confidence``, ``class_map`` and the post-processing are applied after the cache, so
changing them does not re-run the segmenter.
"""
import numpy as np

from catgen.pretrained import build_pretrained, pretrained_cache_key
from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator, spec_settings
from .samples import (batches_by_size, build_image_dataset, dataset_samples, files_key,
                      label_channel_to_target, read_sample)

__all__ = ['SegmenterAffinity', 'resolve_class_map']


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
        loaded = build_pretrained(segmenter, self.device, what='segmenter')
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
                logits = seg(x)
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
        names = getattr(seg, 'classes', None)
        if names is not None:
            arrays['names'] = np.array([str(n) for n in names], dtype=str)
        if key_parts is None and cache.enabled:  # now known from the built segmenter
            seg_key = seg.cache_key()
            if seg_key is not None:
                key_parts = {'segmenter': seg_key, 'images': files_key(infos), 'version': 2}
                key = cache.key(**key_parts)
        if key_parts is not None:
            cache.save('segpred', key, arrays)
        return arrays, seg

    def _key_parts(self, spec, infos):
        """Cache key parts without building the model (None when not known beforehand)."""
        seg_key = pretrained_cache_key(spec)
        if seg_key is None:
            return None
        return {'segmenter': seg_key, 'images': files_key(infos), 'version': 2}

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
            names = getattr(seg, 'classes', None)
            names = None if names is None else [str(n) for n in names]
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
