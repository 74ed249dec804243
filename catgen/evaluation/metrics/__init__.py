from .class_color_distance import ClassColorDistance

__all__ = ['ClassColorDistance']
