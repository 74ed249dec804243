"""The heatmap of a class affinity matrix (target classes x source classes), as a PNG."""
from pathlib import Path

import numpy as np

__all__ = ['plot_affinity_heatmap']


def plot_affinity_heatmap(matrix, path, top_k_annotate=3, title=None, cmap='viridis', dpi=100):
    """Write a PNG heatmap of an affinity matrix.

    Target classes are on the y axis, source classes on the x axis, colours span ``[0, 1]``; the
    ``top_k_annotate`` largest weights of each row are written in their cells (0 for none;
    weights below 0.005 are not written). Uses matplotlib's Agg canvas directly (no pyplot
    state); the write is atomic.

    Args:
        matrix: an :class:`~catgen.affinity.AffinityMatrix` (or anything with ``values``
            float[N_t, N_s], ``target_classes``, ``source_classes`` and ``meta``).
        path: str | Path of the PNG.
        top_k_annotate: how many weights to write per row.
        title: the title (default: ``class affinity (<meta['estimator']>)``).
        cmap: a matplotlib colour map name.
        dpi: resolution of the PNG.

    Returns:
        Path of the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from catgen.utils.io import atomic_write

    path = Path(path)
    values = np.asarray(matrix.values, dtype=np.float64)
    n_t, n_s = values.shape
    meta = getattr(matrix, 'meta', None) or {}
    fig = Figure(figsize=(max(4.0, 0.45 * n_s + 2.5), max(3.0, 0.4 * n_t + 2.0)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(values, cmap=cmap, vmin=0.0, vmax=1.0, aspect='auto',
                   interpolation='nearest')
    ax.set_xticks(range(n_s), labels=list(matrix.source_classes), rotation=60, ha='right',
                  rotation_mode='anchor', fontsize=8)
    ax.set_yticks(range(n_t), labels=list(matrix.target_classes), fontsize=8)
    ax.set_xlabel('source class')
    ax.set_ylabel('target class')
    ax.set_title(title or f'class affinity ({meta.get("estimator", "?")})', fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if top_k_annotate:
        order = np.argsort(-values, axis=1, kind='stable')[:, :top_k_annotate]
        for i in range(n_t):
            for j in order[i]:
                w = values[i, j]
                if w < 0.005:
                    continue
                ax.text(j, i, f'{w:.2f}', ha='center', va='center', fontsize=6,
                        color='black' if w > 0.6 else 'white')
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format='png', dpi=dpi)
    return path
