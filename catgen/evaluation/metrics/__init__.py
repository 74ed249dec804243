from .affinity_accuracy import AffinityAccuracy
from .class_color_distance import ClassColorDistance

__all__ = ['AffinityAccuracy', 'ClassColorDistance']
