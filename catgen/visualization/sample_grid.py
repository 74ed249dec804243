"""Sample grids: label map | generated | real, one column per sample."""
import numpy as np
from PIL import Image

from catgen.utils.io import atomic_write

from .colorize import colorize_label


def make_sample_grid(labels, fakes, reals=None, palette=None, pad=2):
    """Arrange samples in a grid, one column per sample, rows: label map, generated(s), real.

    Args:
        labels: int array[N, H, W], channel space.
        fakes: uint8 array[N, 3, H, W] or [N, K, 3, H, W] (K generated images per label map,
            one row each).
        reals: optional uint8 array[N, 3, H, W].
        palette: uint8 array[C, 3] for the label maps.
        pad: white pixels between tiles.

    Returns:
        np.uint8[rows * (H + pad) + pad, N * (W + pad) + pad, 3]
    """
    labels = np.asarray(labels)
    fakes = np.asarray(fakes)
    if fakes.ndim == 4:
        fakes = fakes[:, None]
    n, h, w = labels.shape
    rows = [[colorize_label(lb, palette) for lb in labels]]
    for k in range(fakes.shape[1]):
        rows.append([f.transpose(1, 2, 0) for f in fakes[:, k]])
    if reals is not None:
        rows.append([r.transpose(1, 2, 0) for r in np.asarray(reals)])
    grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[y:y + h, x:x + w] = tile
    return grid


def save_image(array, path):
    """Write ``np.uint8[H, W, 3]`` to ``path`` as PNG, atomically."""
    with atomic_write(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format='PNG')
