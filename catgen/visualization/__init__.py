from .affinity_heatmap import plot_affinity_heatmap
from .colorize import colorize_label, default_palette
from .sample_grid import make_sample_grid, save_image

__all__ = ['plot_affinity_heatmap', 'colorize_label', 'default_palette', 'make_sample_grid',
           'save_image']
