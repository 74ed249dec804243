from .feature_rearranger import FeatureRearranger, sinusoidal_position_encoding

__all__ = ['FeatureRearranger', 'sinusoidal_position_encoding']
