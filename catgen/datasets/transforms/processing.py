"""Geometric transforms that keep an image and its label map aligned.

They act on ``img`` (``np.uint8[H, W, 3]``) and on every label-like key present:
``gt_seg_map`` (``np.int64[H, W]``), ``gt_instance_map`` (``np.int32[H, W]``) and
``instance_edges`` (``np.uint8[H, W]``). Label-like maps are always resized with nearest
neighbour; ``instance_edges`` is recomputed from the resized or cropped instance map when there
is one (the official code computes edges on the transformed instance map; a flip commutes).
Each updates ``img_shape`` (``(H, W)``).

Sizes: ``Resize(scale=...)`` takes ``(W, H)`` as OpenMMLab's ``Resize`` does; ``crop_size`` takes
``(H, W)`` as MMSegmentation's ``RandomCrop`` does. An int means a square.
"""
import numpy as np
from PIL import Image

from catgen.registry import TRANSFORMS

from .loading import instance_edges

LABEL_KEYS = ('gt_seg_map', 'gt_instance_map', 'instance_edges')

_INTERP = {'nearest': Image.NEAREST, 'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC,
           'lanczos': Image.LANCZOS}


def _shape(results):
    if 'img' in results:
        return results['img'].shape[:2]
    for k in LABEL_KEYS:
        if k in results:
            return results[k].shape[:2]
    raise KeyError('the results dict has neither "img" nor a label map; put the loading '
                   'transforms first in the pipeline')


def resize_nearest(arr, size_hw):
    """Nearest-neighbour resize of a 2-D array of any dtype to ``size_hw = (h, w)``.

    Pixel centres are sampled as PIL's NEAREST does: ``src = floor((dst + 0.5) * in / out)``.
    """
    h, w = size_hw
    H, W = arr.shape[:2]
    rows = np.minimum(((np.arange(h) + 0.5) * H / h).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * W / w).astype(np.int64), W - 1)
    return np.ascontiguousarray(arr[rows[:, None], cols[None, :]])


def _pair(v, name):
    if isinstance(v, int):
        return v, v
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return int(v[0]), int(v[1])
    raise TypeError(f'{name} must be an int or a pair of ints, got {v!r}')


@TRANSFORMS.register_module()
class Resize:
    """Resize the image (``interpolation``) and the label maps (always nearest).

    Args:
        scale: output size ``(W, H)`` (OpenMMLab order) or an int for a square.
        short_side: alternatively, resize so that the short side is this long, keeping the
            aspect ratio (the long side rounded to the nearest int).
        interpolation: for the image: 'bicubic' (default, as OASIS/SPADE), 'bilinear',
            'lanczos' or 'nearest'.
    """

    def __init__(self, scale=None, short_side=None, interpolation='bicubic'):
        if (scale is None) == (short_side is None):
            raise ValueError('Resize needs exactly one of scale=(W, H) and short_side=int')
        self.scale = None if scale is None else _pair(scale, 'scale')
        self.short_side = short_side
        if interpolation not in _INTERP:
            raise ValueError(f'interpolation must be one of {sorted(_INTERP)}, '
                             f'got {interpolation!r}')
        self.interpolation = interpolation

    def _target_hw(self, h, w):
        if self.scale is not None:
            return self.scale[1], self.scale[0]
        s = self.short_side
        if h <= w:
            return s, max(1, int(round(w * s / h)))
        return max(1, int(round(h * s / w))), s

    def __call__(self, results):
        h, w = _shape(results)
        th, tw = self._target_hw(h, w)
        if (th, tw) != (h, w):
            if 'img' in results:
                img = Image.fromarray(results['img']).resize((tw, th), _INTERP[self.interpolation])
                results['img'] = np.asarray(img, dtype=np.uint8).copy()
            for k in LABEL_KEYS:
                if k in results:
                    results[k] = resize_nearest(results[k], (th, tw))
            if 'gt_instance_map' in results:
                results['instance_edges'] = instance_edges(results['gt_instance_map'])
        results['img_shape'] = (th, tw)
        return results

    transform = __call__

    def __repr__(self):
        return (f'{type(self).__name__}(scale={self.scale}, short_side={self.short_side}, '
                f'interpolation={self.interpolation!r})')


def _crop(results, top, left, ch, cw):
    if 'img' in results:
        results['img'] = np.ascontiguousarray(results['img'][top:top + ch, left:left + cw])
    for k in LABEL_KEYS:
        if k in results:
            results[k] = np.ascontiguousarray(results[k][top:top + ch, left:left + cw])
    if 'gt_instance_map' in results:  # as official: edges of the cropped instance map
        results['instance_edges'] = instance_edges(results['gt_instance_map'])
    results['img_shape'] = (ch, cw)
    return results


class _BaseCrop:
    def __init__(self, crop_size):
        self.crop_size = _pair(crop_size, 'crop_size')

    def _check(self, results):
        h, w = _shape(results)
        ch, cw = self.crop_size
        if ch > h or cw > w:
            raise ValueError(f'{type(self).__name__}: crop_size (H, W) = {self.crop_size} is '
                             f'larger than the {h}x{w} (HxW) sample {results.get("img_path")}; '
                             f'put a Resize before the crop or use a smaller crop_size.')
        return h, w, ch, cw

    def __repr__(self):
        return f'{type(self).__name__}(crop_size={self.crop_size})'


@TRANSFORMS.register_module()
class RandomCrop(_BaseCrop):
    """Crop a random ``crop_size = (H, W)`` window (``numpy.random``, seeded by the runner)."""

    def __call__(self, results):
        h, w, ch, cw = self._check(results)
        top = np.random.randint(0, h - ch + 1)
        left = np.random.randint(0, w - cw + 1)
        return _crop(results, top, left, ch, cw)

    transform = __call__


@TRANSFORMS.register_module()
class CenterCrop(_BaseCrop):
    """Crop the central ``crop_size = (H, W)`` window."""

    def __call__(self, results):
        h, w, ch, cw = self._check(results)
        return _crop(results, (h - ch) // 2, (w - cw) // 2, ch, cw)

    transform = __call__


@TRANSFORMS.register_module()
class RandomFlip:
    """Flip horizontally with probability ``prob``; toggles ``results['flip']``."""

    def __init__(self, prob=0.5):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'RandomFlip prob must be in [0, 1], got {prob}')
        self.prob = prob

    def __call__(self, results):
        flip = bool(np.random.rand() < self.prob)
        if flip:
            if 'img' in results:
                results['img'] = np.ascontiguousarray(results['img'][:, ::-1])
            for k in LABEL_KEYS:
                if k in results:
                    results[k] = np.ascontiguousarray(results[k][:, ::-1])
        results['flip'] = bool(results.get('flip', False)) ^ flip
        return results

    transform = __call__

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob})'
