"""Sample grids: label map | generated | real, one column per sample."""
import numpy as np
from PIL import Image

from catgen.utils.io import atomic_write

from .colorize import colorize_label


def make_sample_grid(labels, fakes, reals=None, palette=None, pad=2, row_names=None,
                     scale=1):
    """Arrange samples in a grid, one column per sample, rows: label map, generated(s), real.

    Args:
        labels: int array[N, H, W], channel space; None for images without label maps (no
            label row: unconditional generators).
        fakes: uint8 array[N, 3, H, W] or [N, K, 3, H, W] (K generated images per label map,
            one row each).
        reals: optional uint8 array[N, 3, H, W].
        palette: uint8 array[C, 3] for the label maps.
        pad: white pixels between tiles.
        row_names: optional list of one title per row (label, each generated row, real), drawn
            in a white margin on the left.
        scale: integer upscaling of every tile (nearest neighbour), for small images.

    Returns:
        np.uint8[rows * (H + pad) + pad, N * (W + pad) + pad (+ margin), 3], H and W scaled
    """
    fakes = np.asarray(fakes)
    if fakes.ndim == 4:
        fakes = fakes[:, None]
    n, h, w = fakes.shape[0], fakes.shape[-2], fakes.shape[-1]
    rows = []
    if labels is not None:
        rows.append([colorize_label(lb, palette) for lb in np.asarray(labels)])
    for k in range(fakes.shape[1]):
        rows.append([f.transpose(1, 2, 0) for f in fakes[:, k]])
    if reals is not None:
        rows.append([r.transpose(1, 2, 0) for r in np.asarray(reals)])
    grid = np.full((len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, dtype=np.uint8)
    if scale > 1:
        rows = [[t.repeat(scale, 0).repeat(scale, 1) for t in row] for row in rows]
        h, w = h * scale, w * scale
    margin = 0
    if row_names is not None:
        if len(row_names) != len(rows):
            raise ValueError(f'row_names has {len(row_names)} titles for {len(rows)} rows '
                             f'({"label, " if labels is not None else ""}{fakes.shape[1]} '
                             f'generated'
                             f'{", real" if reals is not None else ""}).')
        margin = 6 * max(len(str(t)) for t in row_names) + 3 * pad
    grid = np.full((len(rows) * (h + pad) + pad, margin + n * (w + pad) + pad, 3), 255,
                   dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            y, x = pad + r * (h + pad), margin + pad + c * (w + pad)
            grid[y:y + h, x:x + w] = tile
    if row_names is not None:
        from PIL import ImageDraw
        image = Image.fromarray(grid)
        draw = ImageDraw.Draw(image)
        for r, title in enumerate(row_names):
            draw.text((pad, pad + r * (h + pad) + h // 2 - 5), str(title), fill=(0, 0, 0))
        grid = np.asarray(image).copy()
    return grid


def save_image(array, path):
    """Write ``np.uint8[H, W, 3]`` to ``path`` as PNG, atomically."""
    with atomic_write(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format='PNG')
