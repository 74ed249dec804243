from .sis_data_preprocessor import SISDataPreprocessor

__all__ = ['SISDataPreprocessor']
