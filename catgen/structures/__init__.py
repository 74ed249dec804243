from .sis_data_sample import SISDataSample

__all__ = ['SISDataSample']
