"""SimulateScribbles: seeded, documented scribbles from a dense label map (sparse inputs).

Fewshot-SMIS's sparse mode takes label maps where only some pixels are labelled (scribbles a
user draws, one or a few strokes per region). To train and evaluate it on data sets with dense
label maps catgen draws such strokes from the dense map, reproducibly:

for every class ``c`` present (``skip_classes`` excepted), ``n = min(max_strokes,
1 + area_c // area_per_stroke)`` strokes, each

1. starts at a random pixel of the class whose disk of radius ``width // 2`` lies inside the
   class (the class's eroded mask; the mask itself when erosion leaves nothing);
2. walks ``length`` steps of one pixel, its heading turning by ``N(0, turn_std)`` radians per
   step (a smooth curve); a step that would leave the eroded mask turns back (heading + pi) and
   the stroke ends at a second failure;
3. is drawn as disks of radius ``width // 2`` around the walk, clipped to the class.

Every other pixel is ``ignore_index`` (255). The random stream of an image is a pure function of
``(seed, its file name)``, so the same image always gets the same scribbles in training and in
evaluation, whatever the order or the worker. The dense map stays in ``gt_seg_map`` (the
ground truth of the metrics); the scribbles go to ``gt_scribbles`` (``inputs['scribbles']``
after ``PackSISInputs``).
"""
import math
import os
import zlib

import numpy as np

from catgen.registry import TRANSFORMS


def _disk(radius):
    """(dy, dx) offsets of the pixels of a disk of ``radius``."""
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = yy ** 2 + xx ** 2 <= r * r + r  # a rounder digital disk than <= r^2
    return yy[keep], xx[keep]


def _erode(mask, radius):
    """Pixels whose disk of ``radius`` lies in ``mask`` (outside the image counts as inside)."""
    if radius <= 0:
        return mask.copy()
    h, w = mask.shape
    padded = np.pad(mask, radius, mode='edge')
    out = np.ones_like(mask)
    for dy, dx in zip(*_disk(radius)):
        out &= padded[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
    return out


def simulate_scribbles(label, rng, width=3, length=20, turn_std=0.3, max_strokes=3,
                       area_per_stroke=400, skip_classes=(), ignore_index=255):
    """Scribbles of the dense ``label`` (module docstring).

    Args:
        label: int array [H, W], the dense label map (``ignore_index`` pixels are skipped).
        rng: a ``numpy.random.Generator``.
        width: stroke width in pixels (a disk of radius ``width // 2``).
        length: steps of the walk (the stroke's length in pixels).
        turn_std: std of the heading change per step (radians).
        max_strokes: at most this many strokes per class.
        area_per_stroke: one stroke plus one per this many pixels of the class.
        skip_classes: class ids that get no strokes.
        ignore_index: the id of unlabelled pixels.

    Returns:
        int64 array [H, W]: the class ids on the strokes, ``ignore_index`` elsewhere.
    """
    label = np.asarray(label)
    h, w = label.shape
    out = np.full((h, w), ignore_index, dtype=np.int64)
    radius = int(width) // 2
    dys, dxs = _disk(radius)
    skip = set(int(c) for c in skip_classes) | {int(ignore_index)}
    for c in np.unique(label):
        if int(c) in skip:
            continue
        mask = label == c
        inner = _erode(mask, radius)
        if not inner.any():
            inner = mask
        ys, xs = np.nonzero(inner)
        strokes = min(int(max_strokes), 1 + int(mask.sum()) // int(area_per_stroke))
        for _ in range(strokes):
            k = rng.integers(len(ys))
            y, x = float(ys[k]), float(xs[k])
            heading = rng.uniform(0, 2 * math.pi)
            points = [(int(y), int(x))]
            for _ in range(int(length)):
                heading += rng.normal(0, turn_std)
                moved = False
                for _ in range(2):  # straight on, else turn back once
                    ny, nx = y + math.sin(heading), x + math.cos(heading)
                    iy, ix = int(round(ny)), int(round(nx))
                    if 0 <= iy < h and 0 <= ix < w and inner[iy, ix]:
                        y, x, moved = ny, nx, True
                        points.append((iy, ix))
                        break
                    heading += math.pi
                if not moved:
                    break
            for py, px in points:
                yy, xx = py + dys, px + dxs
                ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                yy, xx = yy[ok], xx[ok]
                keep = mask[yy, xx]
                out[yy[keep], xx[keep]] = c
    return out


@TRANSFORMS.register_module()
class SimulateScribbles:
    """Add ``results['gt_scribbles']``: scribbles of ``results['gt_seg_map']`` (module doc).

    Args:
        seed: the seed; an image's strokes depend on ``(seed, basename of its label file)``.
        width, length, turn_std, max_strokes, area_per_stroke, skip_classes: see
            :func:`simulate_scribbles`.
        ignore_index: the id of unlabelled pixels (255).
    """

    def __init__(self, seed=0, width=3, length=20, turn_std=0.3, max_strokes=3,
                 area_per_stroke=400, skip_classes=(), ignore_index=255):
        if int(width) < 1 or int(length) < 0 or int(max_strokes) < 1 or int(area_per_stroke) < 1:
            raise ValueError('SimulateScribbles: width, max_strokes and area_per_stroke must be '
                             f'>= 1 and length >= 0, got width={width}, length={length}, '
                             f'max_strokes={max_strokes}, area_per_stroke={area_per_stroke}')
        self.seed = int(seed)
        self.options = dict(width=int(width), length=int(length), turn_std=float(turn_std),
                            max_strokes=int(max_strokes), area_per_stroke=int(area_per_stroke),
                            skip_classes=tuple(skip_classes), ignore_index=int(ignore_index))

    def __call__(self, results):
        if 'gt_seg_map' not in results:
            raise KeyError('SimulateScribbles needs results["gt_seg_map"]: put '
                           'LoadSISAnnotations before it.')
        name = os.path.basename(str(results.get('seg_map_path', results.get('sample_idx', ''))))
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        label = results['gt_seg_map']
        if results.get('flip', False):  # the strokes of the unflipped map, flipped
            label = label[:, ::-1]
            results['gt_scribbles'] = np.ascontiguousarray(
                simulate_scribbles(label, rng, **self.options)[:, ::-1])
        else:
            results['gt_scribbles'] = simulate_scribbles(label, rng, **self.options)
        return results

    transform = __call__

    def __repr__(self):
        opts = ', '.join(f'{k}={v}' for k, v in self.options.items())
        return f'{type(self).__name__}(seed={self.seed}, {opts})'
