"""Label maps to colours."""
import numpy as np


def default_palette(num_classes, seed=0):
    """A fixed palette ``np.uint8[num_classes, 3]``; channel 0 (don't care) is black."""
    rng = np.random.Generator(np.random.PCG64(seed))
    palette = rng.integers(40, 256, size=(num_classes, 3), dtype=np.uint8)
    palette[0] = 0
    return palette


def colorize_label(label, palette=None):
    """label: int array[H, W] (channel space) -> np.uint8[H, W, 3].

    Ids beyond the palette (e.g. 255 = ignore) are drawn white.
    """
    label = np.asarray(label)
    palette = np.asarray(palette if palette is not None else default_palette(int(label.max()) + 1),
                         dtype=np.uint8)
    out = np.full(label.shape + (3,), 255, dtype=np.uint8)
    valid = (label >= 0) & (label < len(palette))
    out[valid] = palette[label[valid]]
    return out
