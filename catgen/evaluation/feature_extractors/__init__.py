"""Feature extractors for FID / KID (registered in ``catgen.registry.MODELS``)."""
from .base_feature_extractor import STANDARD_NAME, BaseFeatureExtractor
from .inception_v3 import InceptionV3FeatureExtractor, default_inception_weights
from .segmenter import SegmenterFeatureExtractor

__all__ = ['BaseFeatureExtractor', 'STANDARD_NAME', 'InceptionV3FeatureExtractor',
           'default_inception_weights', 'SegmenterFeatureExtractor']
