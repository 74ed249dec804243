"""SegmentationMIoU: how well a segmenter trained on real images recognises the generated ones.

A semantic segmenter (an mmsegmentation model: config file + local checkpoint) segments every
generated image ``fake_img`` (the first sample of a ``[K, 3, H, W]`` stack); its prediction is
compared with the label map the image was generated from (``gt_label``). The better the
generator follows the layout and renders each class recognisably, the higher the mIoU. With
``segment_real=True`` the real images (``gt_img``) are segmented too and the same figures are
reported with a ``real_`` prefix: the segmenter's ceiling on this evaluation set.

IoU is computed as mmsegmentation's ``IoUMetric`` does: over the whole evaluation set, per
segmenter class ``k``, ``IoU_k = |pred = k and gt = k| / |pred = k or gt = k|`` over the pixels
that are not ignored; a class with an empty union is NaN and left out of the mean
(``mIoU = nanmean_k IoU_k``); ``aAcc = correct pixels / counted pixels``. A class that the
segmenter predicts but that is absent from the labels counts with IoU 0. Figures are
percentages (0..100), as in mmseg.

**Label spaces.** The synthesizer's labels are in catgen's channel space (0 = don't care, real
classes ``1..N``; docs/conventions.md), the segmenter's classes are its own ids ``0..K-1``. The
mapping is explicit:

- ``label_offset=o`` (default 1): label ``l`` -> segmenter class ``l - o`` (labels below ``o``
  are ignored). Right for SynthScenes, COCO-Stuff and the folder layout (on-disk id ``i`` is
  label ``i + 1``) with a segmenter trained on the on-disk ids, and for ADE20K with an mmseg
  ``reduce_zero_label`` segmenter (its 150 classes are labels ``1..150``).
- ``label_map``: a list with one entry per label id (``label_map[l]`` = segmenter class, or
  ``None`` / ``-1`` to ignore label ``l``), or a dict ``{label id: segmenter class or None}``
  (labels not in it are ignored), e.g. Cityscapes label ids -> train ids.

Label 0 (don't care) is always ignored. The map is checked against the segmenter's number of
classes (its decode head's outputs) and the label space (``num_classes`` or the data set's
``metainfo['classes']``); a mismatch raises a ValueError saying what to pass.

**Segmenter input.** Images go through the segmenter's own ``data_preprocessor`` (mean/std,
``bgr_to_rgb``) as uint8, in the channel order the segmenter was trained with: mmseg's
``LoadImageFromFile`` reads BGR, so ``input_order='bgr'`` (default) hands the RGB images over
flipped to BGR. Inference runs in eval mode without gradients, ``batch_size`` images at a time,
with a tqdm bar (``progress``) counting segmented images.

Metrics (prefix ``seg``): ``mIoU``, ``aAcc``, ``IoU.<class name>`` per segmenter class
(``per_class=True``; NaN when the class is neither labelled nor predicted), and with
``segment_real=True`` the same with ``real_`` in front (``real_mIoU``, ``real_aAcc``,
``real_IoU.<class name>``).

Example (SynthScenes target)::

    val_evaluator = [
        dict(type='ClassColorDistance', num_classes=12),
        dict(type='SegmentationMIoU',
             config='configs/segmenters/fcn_synthscenes-target.py',
             checkpoint='zoo://fcn_synthscenes-target',
             label_offset=1, segment_real=True)]
"""
import numpy as np
from mmengine.evaluator import BaseMetric

from catgen.registry import METRICS

from .appearance_distance import sample_images

__all__ = ['SegmentationMIoU', 'iou_areas', 'iou_from_areas', 'build_label_lut']


def build_label_lut(num_labels, num_seg_classes, label_offset=1, label_map=None):
    """``int64[num_labels]``: synthesizer label id -> segmenter class id (-1 = ignored).

    Args:
        num_labels: label channels (don't care included).
        num_seg_classes: the segmenter's number of classes (None = not known yet: ids are then
            only checked to be >= -1).
        label_offset: label ``l`` -> class ``l - label_offset`` (when ``label_map`` is None).
        label_map: list (one entry per label id) or dict ``{label id: class}``; None / -1 =
            ignore.

    Raises:
        ValueError: the map does not fit the label space or the segmenter's classes.
    """
    hint = ('Pass label_offset=<o> (label l -> segmenter class l - o; SynthScenes: 1) or '
            'label_map=[segmenter class or None for each label id 0..num_classes-1].')
    if label_map is None:
        offset = int(label_offset)
        if offset < 1:
            raise ValueError(f'label_offset={label_offset!r} would map label 0 (don\'t care) to '
                             f'a segmenter class; it must be >= 1. {hint}')
        lut = np.arange(num_labels, dtype=np.int64) - offset
        lut[lut < 0] = -1
        what = f'label_offset={offset}'
    else:
        if isinstance(label_map, dict):
            bad = [k for k in label_map if not isinstance(k, (int, np.integer))
                   or not 0 <= int(k) < num_labels]
            if bad:
                raise ValueError(f'label_map keys {bad} are not label ids 0..{num_labels - 1} '
                                 f'(num_classes={num_labels}, don\'t care included). {hint}')
            entries = [label_map.get(i) for i in range(num_labels)]
        else:
            entries = list(label_map)
            if len(entries) != num_labels:
                raise ValueError(f'label_map has {len(entries)} entries but the labels have '
                                 f'{num_labels} ids (num_classes, don\'t care included); give '
                                 f'one segmenter class (or None) per label id. {hint}')
        lut = np.array([-1 if e is None else int(e) for e in entries], dtype=np.int64)
        if lut[0] != -1:
            raise ValueError(f'label_map maps label 0 (don\'t care) to segmenter class '
                             f'{lut[0]}; don\'t-care pixels are always ignored: set it to None.')
        if (lut < -1).any():
            raise ValueError(f'label_map has entries {sorted(set(lut[lut < -1].tolist()))}; use '
                             f'segmenter class ids >= 0, or None / -1 to ignore a label.')
        what = 'label_map'
    if num_seg_classes is not None and (lut >= num_seg_classes).any():
        bad = np.flatnonzero(lut >= num_seg_classes)
        raise ValueError(f'{what} maps labels {bad.tolist()} to segmenter classes '
                         f'{lut[bad].tolist()}, but the segmenter has {num_seg_classes} classes '
                         f'(0..{num_seg_classes - 1}). Check that the segmenter was trained on '
                         f'this label space. {hint}')
    return lut


def iou_areas(pred, target, num_seg_classes):
    """``int64[3, K]``: per segmenter class, pixels of ``pred == target == k``, of
    ``pred == k`` and of ``target == k``, over the pixels with ``target >= 0``.

    Args:
        pred: ``int[H, W]`` predicted classes ``0..K-1``.
        target: ``int[H, W]`` true segmenter classes, -1 = ignored.
        num_seg_classes: K.
    """
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)
    target = np.asarray(target, dtype=np.int64).reshape(-1)
    keep = target >= 0
    pred, target = pred[keep], target[keep]
    return np.stack([np.bincount(pred[pred == target], minlength=num_seg_classes),
                     np.bincount(pred, minlength=num_seg_classes),
                     np.bincount(target, minlength=num_seg_classes)])


def iou_from_areas(areas):
    """``(iou float[K], miou, aacc)`` in percent from summed ``iou_areas``: NaN IoU where the
    union is empty; ``miou`` the mean over the other classes (NaN if none); ``aacc`` correct /
    counted pixels (NaN if none were counted)."""
    inter, area_pred, area_gt = (np.asarray(a, dtype=np.float64) for a in areas)
    union = area_pred + area_gt - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, inter / union, np.nan) * 100
    valid = iou[np.isfinite(iou)]
    miou = float(valid.mean()) if valid.size else float('nan')
    total = area_gt.sum()
    aacc = float(inter.sum() / total * 100) if total > 0 else float('nan')
    return iou, miou, aacc


def _segmenter_num_classes(seg):
    """Number of outputs of a built segmenter wrapper, when it can be told without running it
    (its ``classes``, its ``num_classes``, or an injected module's ``num_classes``)."""
    if getattr(seg, 'classes', None) is not None:
        return len(seg.classes)
    if getattr(seg, 'num_classes', None):
        return int(seg.num_classes)
    module = getattr(seg, 'fn', None)  # a ModuleAdapter around an injected module
    if getattr(module, 'num_classes', None):
        return int(module.num_classes)
    return None


@METRICS.register_module()
class SegmentationMIoU(BaseMetric):
    """mIoU / aAcc of a segmenter's predictions on the generated images against their input
    label maps (see the module docstring for the computation and the label mapping).

    Args:
        config: the mmseg config file the segmenter was trained with (e.g.
            ``configs/segmenters/fcn_synthscenes-target.py``).
        checkpoint: its local ``.pth`` (nothing is downloaded).
        segmenter: instead of config/checkpoint, any segmenter spec of
            :func:`catgen.pretrained.build_pretrained`: ``dict(type='mmseg', config,
            checkpoint)``, ``dict(type='oasis_discriminator', config, checkpoint)``, a built
            wrapper, or an ``nn.Module`` / callable taking float ``[B, 3, H, W]`` RGB in
            ``[-1, 1]`` and returning logits ``[B, K, h, w]``.
        label_offset: synthesizer label ``l`` -> segmenter class ``l - label_offset``.
        label_map: explicit list / dict label id -> segmenter class (overrides label_offset).
        num_classes: synthesizer label channels (don't care included); default: the length of
            the evaluated data set's ``metainfo['classes']``.
        input_order: with config/checkpoint, the channel order the mmseg segmenter was
            trained on: ``'bgr'`` (mmseg's ``LoadImageFromFile``; default) or ``'rgb'``.
        segment_real: also segment the real images (``gt_img``) and report ``real_*``.
        per_class: report ``IoU.<class name>`` per segmenter class.
        class_names: names of the segmenter classes for the per-class keys (default: the
            checkpoint's ``dataset_meta`` classes, else the data set's names of the labels
            mapped to each class, else ``class<k>``).
        batch_size: images per segmenter call.
        device: where the segmenter runs (``'cpu'``, ``'cuda'``).
        progress: a tqdm bar counting segmented images (main process only).
        prefix: metric name prefix (default ``'seg'``).
        collect_device: 'cpu' or 'gpu' for gathering results across processes.

    Raises:
        FileNotFoundError: the config or checkpoint does not exist (names the file).
        ValueError: no segmenter is given, or the label mapping does not fit.
    """

    default_prefix = 'seg'

    def __init__(self, config=None, checkpoint=None, segmenter=None, label_offset=1,
                 label_map=None, num_classes=None, input_order='bgr', segment_real=False,
                 per_class=True, class_names=None, batch_size=16, device='cpu', progress=True,
                 prefix=None, collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if segmenter is None:
            if config is None or checkpoint is None:
                raise ValueError(
                    'SegmentationMIoU needs a segmenter: config=<mmseg config file> and '
                    'checkpoint=<local .pth trained with it> (SynthScenes target: configs/'
                    'segmenters/fcn_synthscenes-target.py and zoo://fcn_synthscenes-target, '
                    'the model zoo\'s, or a .pth from tools/train_segmenter.py), or '
                    'segmenter=<nn.Module / spec dict>.')
            segmenter = dict(type='mmseg', config=config, checkpoint=checkpoint,
                             input_order=input_order)
        elif config is not None or checkpoint is not None:
            raise ValueError('Pass either config= and checkpoint= or segmenter=, not both.')
        if int(batch_size) < 1:
            raise ValueError(f'batch_size={batch_size!r} must be >= 1.')
        from catgen.pretrained import build_pretrained
        self._seg = build_pretrained(segmenter, device, what='segmenter')
        self.num_seg_classes = _segmenter_num_classes(self._seg)
        if class_names is not None:
            class_names = [str(n) for n in class_names]
            if self.num_seg_classes is not None and len(class_names) != self.num_seg_classes:
                raise ValueError(f'class_names has {len(class_names)} names but the segmenter '
                                 f'has {self.num_seg_classes} classes.')
        self.class_names = class_names
        self.label_offset = label_offset
        self.label_map = label_map
        self.num_classes = None if num_classes is None else int(num_classes)
        if isinstance(label_map, (list, tuple)) and self.num_classes is None:
            self.num_classes = len(label_map)
        self.segment_real = bool(segment_real)
        self.per_class = per_class
        self.batch_size = int(batch_size)
        self.progress = progress
        self._lut = None
        self._bar = None
        if self.num_classes is not None:  # check the mapping now, not at the first batch
            self._lut = build_label_lut(self.num_classes, self.num_seg_classes,
                                        label_offset, label_map)

    # ------------------------------------------------------------------ helpers
    def _label_lut(self):
        if self._lut is None:
            classes = (self.dataset_meta or {}).get('classes')
            if not classes:
                raise ValueError('SegmentationMIoU does not know the number of label ids: pass '
                                 'num_classes=<label channels, don\'t care included> or '
                                 'evaluate a data set whose metainfo has "classes".')
            self.num_classes = len(classes)
            self._lut = build_label_lut(self.num_classes, self.num_seg_classes,
                                        self.label_offset, self.label_map)
        return self._lut

    def _progress(self, n):
        if not self.progress:
            return
        if self._bar is None:
            from mmengine.dist import is_main_process
            if not is_main_process():
                return
            from tqdm import tqdm
            self._bar = tqdm(desc='SegmentationMIoU: segmenting', unit='img')
        self._bar.update(n)

    def segment(self, images):
        """Predicted segmenter classes of uint8 RGB images.

        Args:
            images: list of ``uint8[3, H, W]`` (numpy or tensors; sizes may differ).

        Returns:
            list of ``int64[H, W]`` numpy arrays (argmax over the segmenter's classes; logits
            of another size are resized bilinearly first).
        """
        import torch
        import torch.nn.functional as F

        shapes = [tuple(img.shape[-2:]) for img in images]
        order = sorted(range(len(images)), key=lambda i: shapes[i])  # equal sizes together
        batches, cur = [], []
        for i in order:
            if cur and (len(cur) == self.batch_size or shapes[i] != shapes[cur[0]]):
                batches.append(cur)
                cur = []
            cur.append(i)
        batches += [cur] if cur else []
        preds = [None] * len(images)
        for idx in batches:
            x = torch.stack([torch.as_tensor(np.asarray(images[i])) for i in idx])
            with torch.no_grad():
                logits = self._seg(x.to(torch.uint8))
            if not torch.is_tensor(logits) or logits.ndim != 4 or logits.shape[0] != len(idx):
                raise ValueError(f'The segmenter returned {getattr(logits, "shape", logits)!r} '
                                 f'for {len(idx)} images; it must return logits '
                                 f'Tensor[B, K, H, W].')
            k = logits.shape[1]
            if self.num_seg_classes is None:  # a callable: known from its first output
                self.num_seg_classes = k
            elif k != self.num_seg_classes:
                raise ValueError(f'The segmenter returned {k} channels but has '
                                 f'{self.num_seg_classes} classes.')
            if tuple(logits.shape[-2:]) != shapes[idx[0]]:
                logits = F.interpolate(logits.float(), size=shapes[idx[0]], mode='bilinear',
                                       align_corners=False)
            pred = logits.argmax(dim=1).cpu().numpy()
            for j, i in enumerate(idx):
                preds[i] = pred[j]
            self._progress(len(idx))
        return preds

    def _names(self):
        k = self.num_seg_classes
        if k is None:
            return []
        if self.class_names is not None:
            return self.class_names
        if getattr(self._seg, 'classes', None) is not None:
            return [str(n) for n in self._seg.classes]
        classes = (self.dataset_meta or {}).get('classes')
        lut = self._lut
        names = []
        for c in range(k):
            labels = np.flatnonzero(lut == c) if lut is not None else []
            if classes and len(labels) and len(classes) == len(lut):
                names.append('+'.join(str(classes[i]) for i in labels))
            else:
                names.append(f'class{c}')
        return names

    # ------------------------------------------------------------------ BaseMetric
    def process(self, data_batch, data_samples):
        lut = self._label_lut()
        keys = ('fake_img', 'gt_img') if self.segment_real else ('fake_img',)
        images, labels = [], []
        for ds in data_samples:
            imgs, label = sample_images(ds, keys)
            lo, hi = int(label.min()), int(label.max())
            if lo < 0 or hi >= len(lut):
                raise ValueError(f'gt_label holds ids {lo}..{hi} but num_classes={len(lut)} '
                                 f'(ids 0..{len(lut) - 1}, 0 = don\'t care); pass the data '
                                 f'set\'s num_classes.')
            images.append(imgs)
            labels.append(lut[label])
        n = len(data_samples)
        preds = self.segment([imgs[j] for j in range(len(keys)) for imgs in images])
        if (lut >= self.num_seg_classes).any():  # the segmenter's size was only known now
            build_label_lut(len(lut), self.num_seg_classes, self.label_offset, self.label_map)
        for i in range(n):
            result = dict(fake=iou_areas(preds[i], labels[i], self.num_seg_classes))
            if self.segment_real:
                result['real'] = iou_areas(preds[n + i], labels[i], self.num_seg_classes)
            self.results.append(result)

    def compute_metrics(self, results):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        out = {}
        names = self._names() if self.per_class else None
        for kind, pre in (('fake', ''), ('real', 'real_')):
            if kind == 'real' and not self.segment_real:
                continue
            if results:
                areas = np.sum([r[kind] for r in results], axis=0)
            else:
                areas = np.zeros((3, self.num_seg_classes or 0), dtype=np.int64)
            iou, miou, aacc = iou_from_areas(areas)
            out[f'{pre}mIoU'] = miou
            out[f'{pre}aAcc'] = aacc
            if names is not None:
                out.update({f'{pre}IoU.{name}': float(v) for name, v in zip(names, iou)})
        return out
