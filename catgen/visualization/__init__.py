from .colorize import colorize_label, default_palette
from .sample_grid import make_sample_grid, save_image

__all__ = ['colorize_label', 'default_palette', 'make_sample_grid', 'save_image']
