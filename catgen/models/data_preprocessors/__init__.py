from .image_data_preprocessor import ImageDataPreprocessor
from .sis_data_preprocessor import SISDataPreprocessor

__all__ = ['ImageDataPreprocessor', 'SISDataPreprocessor']
