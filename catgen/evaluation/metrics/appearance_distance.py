"""Per-class appearance distance between generated and real pixels (no pretrained network).

For every class ``c`` (channel space, ``1..num_classes-1``; channel 0 = don't care is skipped)
and for each of the two image sets (generated ``fake_img``, real ``gt_img``), pooled over the
whole evaluation set, three statistics of the pixels labelled ``c`` (0..255 RGB units):

- **mean colour** ``mu[c]``: float[3], the mean RGB value;
- **colour standard deviation** ``sigma[c]``: float[3], per channel (pooled over all pixels of
  the class, so per-instance colour jitter counts as spread, as in the SynthScenes recipes);
- **texture** ``tau[c]``: float[2, 3], the mean absolute finite difference per channel between
  horizontally (row 0) and vertically (row 1) adjacent pixels, over the pairs whose two pixels
  are both labelled ``c`` (class borders do not count as texture). Flat regions give 0, stripes,
  checkers and noise give more.

Per class, the distance of each part is an L2 norm in the same 0..255 units:
``d_mean = |mu_fake - mu_real|``, ``d_std = |sigma_fake - sigma_real|`` and
``d_tex = sqrt(mean over directions of |tau_fake[dir] - tau_real[dir]|^2)`` (the root mean
square over the directions both sets have pairs in, so it is on the scale of a 3-channel
difference too). A colour shift ``v`` of every generated pixel gives ``d_mean = |v|`` and leaves
``d_std`` and ``d_tex`` at 0.

**Normalisation.** Raw, the parts are not comparable: on SynthScenes mean colours of different
classes lie ~100-200 levels apart, standard deviations and textures ~10-40. Each part is
therefore divided by its *scale*: the mean, over all pairs of distinct classes of the real
images, of that part's distance between the two real classes (``s_mean``, ``s_std``, ``s_tex``).
A normalised part of 1 means "as different as two different real classes are, on average",
whatever the statistic. The scales depend only on the real images of the evaluation set, so all
models evaluated on the same set share them; pass ``scales=`` to pin them (e.g. to compare
across evaluation sets). A scale that cannot be computed (fewer than two real classes with that
statistic, or all equal) falls back to 1 with a warning.

The per-class distance is the mean of its normalised parts (a texture part that is undefined,
because a class has no same-class neighbour pair in one of the sets, is left out); the metric
averages it over the classes present in both sets.

Metrics (prefix ``appearance``): ``mean`` (the normalised per-class distance, averaged over
classes; 0 = same statistics), ``mean_color``, ``std_color``, ``texture`` (the raw parts in
0..255 units, averaged over classes), ``num_classes`` (classes present in both sets) and, with
``per_class=True``, one ``dist.<class name>`` key per class (its normalised distance, NaN when
the class is missing from either set).

:func:`class_pixel_stats` (the per-image sums) and :func:`sample_images` (reading the
synthesizer's predict outputs) are shared with :class:`ClassColorDistance`.
"""
import warnings

import numpy as np
from mmengine.evaluator import BaseMetric

from catgen.registry import METRICS

__all__ = ['AppearanceDistance', 'class_pixel_stats', 'sample_images', 'stats_features',
           'NUM_COLOR_STATS', 'NUM_STATS']

# Columns of a per-class statistics row (sums, so they add up over images):
# n, sum(rgb)[3], sum(rgb^2)[3], n_h, sum|dx|[3], n_v, sum|dy|[3]
NUM_COLOR_STATS = 7
NUM_STATS = 15
PARTS = ('mean_color', 'std_color', 'texture')


def _field(ds, key):
    """``ds[key]`` of a data sample (a dict, as MMEngine's Evaluator hands them over, or a
    :class:`~mmengine.structures.BaseDataElement`) as a numpy array."""
    value = ds.get(key) if isinstance(ds, dict) else getattr(ds, key, None)
    if value is None:
        raise KeyError(f'The data sample has no {key!r} (it has {sorted(_keys(ds))}). This '
                       f'metric reads the synthesizer\'s predict outputs: fake_img, gt_img, '
                       f'gt_label (evaluate a catgen synthesizer on a data set with labels).')
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _keys(ds):
    return ds.keys() if isinstance(ds, dict) else ds.all_keys()


def sample_images(ds, keys=('fake_img', 'gt_img')):
    """``(images, label)`` of one predict output: each image ``uint8[3, H, W]`` (the first
    sample of a ``[K, 3, H, W]`` stack) and ``label`` ``int64[H, W]`` (channel space).

    Raises:
        KeyError: a field is missing.
        ValueError: an image is not ``[3, H, W]`` / ``[K, 3, H, W]`` or not the label's size.
    """
    label = _field(ds, 'gt_label').astype(np.int64)
    if label.ndim == 3 and label.shape[0] == 1:
        label = label[0]
    if label.ndim != 2:
        raise ValueError(f'gt_label has shape {label.shape}; expected [H, W] class ids.')
    images = []
    for key in keys:
        img = _field(ds, key)
        if img.ndim == 4:  # K samples per label map: use the first
            img = img[0]
        if img.ndim != 3 or img.shape[0] != 3 or img.shape[1:] != label.shape:
            raise ValueError(f'{key} has shape {img.shape}; expected [3, H, W] (or [K, 3, H, W]) '
                             f'with H, W = {label.shape}, the size of gt_label.')
        images.append(img)
    return images, label


def class_pixel_stats(img, label, num_classes, texture=True):
    """Per-class sums of one image's pixel statistics, for the classes present in ``label``.

    Args:
        img: ``uint8`` (or float) ``[3, H, W]`` RGB.
        label: ``int[H, W]`` class ids in channel space; 0 (don't care) is skipped.
        num_classes: channels of the label space (including don't care).
        texture: also the finite-difference sums (else only the first ``NUM_COLOR_STATS``
            columns).

    Returns:
        ``(ids, stats)``: ``ids`` ``int64[m]`` the classes present (ascending, no 0), ``stats``
        ``float64[m, NUM_STATS or NUM_COLOR_STATS]`` with columns ``n, sum rgb (3), sum rgb^2 (3)``
        then ``n_h, sum |dx| (3), n_v, sum |dy| (3)`` (pairs of horizontally / vertically
        adjacent pixels both in the class).

    Raises:
        ValueError: a label id is outside ``[0, num_classes)``.
    """
    label = np.asarray(label, dtype=np.int64)
    lo, hi = int(label.min()), int(label.max())
    if lo < 0 or hi >= num_classes:
        raise ValueError(f'gt_label holds class ids {lo}..{hi} but num_classes={num_classes} '
                         f'(ids 0..{num_classes - 1}, 0 = don\'t care). Set num_classes to the '
                         f'data set\'s number of channels, don\'t care included.')
    x = np.asarray(img, dtype=np.float64).reshape(3, *label.shape)
    cols = NUM_STATS if texture else NUM_COLOR_STATS
    out = np.zeros((num_classes, cols))

    def add(ids, values, col):  # ids int[P], values float[3, P] -> count at col, sums after
        out[:, col] += np.bincount(ids, minlength=num_classes)
        for ch in range(3):
            out[:, col + 1 + ch] += np.bincount(ids, values[ch], num_classes)

    flat = label.reshape(-1)
    keep = flat > 0
    px = x.reshape(3, -1)[:, keep]
    add(flat[keep], px, 0)
    for ch in range(3):
        out[:, 4 + ch] = np.bincount(flat[keep], px[ch] ** 2, num_classes)
    if texture:
        same = (label[:, 1:] == label[:, :-1]) & (label[:, 1:] > 0)
        add(label[:, 1:][same], np.abs(x[:, :, 1:] - x[:, :, :-1])[:, same], 7)
        same = (label[1:] == label[:-1]) & (label[1:] > 0)
        add(label[1:][same], np.abs(x[:, 1:] - x[:, :-1])[:, same], 11)
    ids = np.flatnonzero(out[:, 0] > 0)
    return ids, out[ids]


def stats_features(stats):
    """Statistics from summed rows ``float64[C, NUM_STATS or NUM_COLOR_STATS]``.

    Returns:
        dict with ``n`` ``float[C]``, ``mean`` and ``std`` ``float[C, 3]`` (NaN where ``n = 0``)
        and, for full rows, ``texture`` ``float[C, 2, 3]`` (NaN where a direction has no pair).
    """
    with np.errstate(invalid='ignore', divide='ignore'):
        n = stats[:, 0]
        mean = stats[:, 1:4] / n[:, None]
        var = stats[:, 4:7] / n[:, None] - mean ** 2
        feats = dict(n=n, mean=mean, std=np.sqrt(np.clip(var, 0, None)))
        if stats.shape[1] >= NUM_STATS:
            feats['texture'] = np.stack([stats[:, 8:11] / stats[:, 7:8],
                                         stats[:, 12:15] / stats[:, 11:12]], axis=1)
    return feats


def _part_distance(part, a, b):
    """Distance of one part between statistics ``a`` and ``b`` (same leading shape)."""
    if part != 'texture':
        return np.linalg.norm(a - b, axis=-1)
    sq = np.sum((a - b) ** 2, axis=-1)  # [..., 2 directions], NaN where a direction is missing
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN -> NaN
        return np.sqrt(np.nanmean(sq, axis=-1))


def _nanmean(values):
    """Mean of the finite entries; NaN (without a warning) when there are none."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float('nan')


def _key_of(part):
    return {'mean_color': 'mean', 'std_color': 'std', 'texture': 'texture'}[part]


@METRICS.register_module()
class AppearanceDistance(BaseMetric):
    """Per-class appearance distance (mean colour, colour spread, texture) between generated and
    real pixels; see the module docstring for the statistics and their normalisation.

    It says whether each class gets the right colour, contrast and texture (on SynthScenes the
    real pixels follow known recipes), not whether images look real: use FID/KID for that.

    Args:
        num_classes: channels of the label space (don't care included); default: the length of
            the evaluated data set's ``metainfo['classes']``.
        scales: ``dict(mean_color=, std_color=, texture=)`` fixed normalisation scales (0..255
            units); default None = the mean inter-class distance of the real images (per part).
        per_class: also report one key per class (``appearance/dist.<class name>``).
        prefix: metric name prefix (default ``'appearance'``).
        collect_device: 'cpu' or 'gpu' for gathering results across processes.
    """

    default_prefix = 'appearance'
    texture = True  # ClassColorDistance turns it off

    def __init__(self, num_classes=None, scales=None, per_class=False, prefix=None,
                 collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f'num_classes={num_classes!r}: expected the number of label '
                             f'channels, don\'t care included (>= 2; SynthScenes target: 12).')
        self.num_classes = None if num_classes is None else int(num_classes)
        if scales is not None:
            unknown = set(scales) - set(PARTS)
            bad = {k: v for k, v in scales.items() if k in PARTS and not float(v) > 0}
            if unknown or bad:
                raise ValueError(f'scales={scales!r}: expected positive numbers for keys among '
                                 f'{PARTS} (missing keys are computed from the real images).')
            scales = {k: float(v) for k, v in scales.items()}
        self.scales = scales
        self.per_class = per_class

    # ------------------------------------------------------------------ helpers
    def _num_classes(self):
        if self.num_classes is not None:
            return self.num_classes
        classes = (self.dataset_meta or {}).get('classes')
        if not classes:
            raise ValueError(f'{type(self).__name__} does not know the number of classes: pass '
                             f'num_classes=<label channels, don\'t care included> or evaluate a '
                             f'data set whose metainfo has "classes".')
        return len(classes)

    def _class_names(self, num_classes):
        classes = (self.dataset_meta or {}).get('classes')
        if classes and len(classes) == num_classes:
            return [str(c) for c in classes]
        return [f'class{c}' for c in range(num_classes)]

    def _summed(self, results):
        """``float64[2 (fake, real), C, D]``: the per-image sums added up."""
        num_classes = self._num_classes()
        cols = NUM_STATS if self.texture else NUM_COLOR_STATS
        total = np.zeros((2, num_classes, cols))
        for r in results:
            total[:, r['ids']] += r['stats']
        return total

    # ------------------------------------------------------------------ BaseMetric
    def process(self, data_batch, data_samples):
        num_classes = self._num_classes()
        for ds in data_samples:
            (fake, real), label = sample_images(ds)
            # one label map for both: the same classes, in the same order
            ids, fake_stats = class_pixel_stats(fake, label, num_classes, self.texture)
            _, real_stats = class_pixel_stats(real, label, num_classes, self.texture)
            self.results.append(dict(ids=ids, stats=np.stack([fake_stats, real_stats])))

    def scales_from_real(self, real):
        """Normalisation scale per part: the mean distance between the real statistics of two
        distinct classes (over all pairs), or the fixed ``scales``; falls back to 1."""
        out = {}
        for part in PARTS:
            if self.scales and part in self.scales:
                out[part] = self.scales[part]
                continue
            values = real[_key_of(part)]
            ok = np.flatnonzero(real['n'] > 0)
            ia, ib = np.triu_indices(len(ok), k=1)
            dist = _part_distance(part, values[ok[ia]], values[ok[ib]])
            dist = dist[np.isfinite(dist)]
            scale = float(dist.mean()) if dist.size else 0.0
            if not scale > 0:
                warnings.warn(f'{type(self).__name__}: the {part} scale cannot be computed from '
                              f'the real images (fewer than two classes, or all alike); using '
                              f'1 (raw 0..255 units). Pass scales=dict({part}=...) to fix it.')
                scale = 1.0
            out[part] = scale
        return out

    def compute_metrics(self, results):
        num_classes = self._num_classes()
        total = self._summed(results)
        fake, real = stats_features(total[0]), stats_features(total[1])
        present = (fake['n'] > 0) & (real['n'] > 0)
        present[0] = False
        scales = self.scales_from_real(real)
        raw, normed = {}, []
        for part in PARTS:
            key = _key_of(part)
            d = _part_distance(part, fake[key], real[key])  # [C], NaN where undefined
            d = np.where(present, d, np.nan)
            raw[part] = d
            normed.append(d / scales[part])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN slices -> NaN
            per_class = np.nanmean(np.stack(normed), axis=0)  # [C]
            out = dict(mean=_nanmean(per_class[present]))
            out.update({part: _nanmean(raw[part][present]) for part in PARTS})
        out['num_classes'] = int(present.sum())
        if self.per_class:
            names = self._class_names(num_classes)
            out.update({f'dist.{names[c]}': float(per_class[c]) for c in range(1, num_classes)})
        from mmengine.logging import print_log
        print_log(f'{type(self).__name__}: normalisation scales (0..255 units) '
                  + ', '.join(f'{k}={v:.3g}' for k, v in scales.items()), logger='current')
        return out
