from .appearance_distance import AppearanceDistance
from .class_color_distance import ClassColorDistance
from .fid import FID
from .intra_lpips import IntraLPIPS
from .kid import KID
from .lpips_diversity import LPIPSDiversity
from .segmentation_miou import SegmentationMIoU
from .spectral_artifacts import SpectralArtifacts

__all__ = ['AppearanceDistance', 'ClassColorDistance', 'FID', 'IntraLPIPS', 'KID',
           'LPIPSDiversity', 'SegmentationMIoU', 'SpectralArtifacts']
