from .feature_matching_loss import FeatureMatchingLoss
from .gan_loss import GANLoss
from .kld_loss import KLDLoss
from .labelmix import generate_labelmix, labelmix_loss
from .oasis_loss import OASISLoss
from .vgg_perceptual_loss import VGGPerceptualLoss

__all__ = ['FeatureMatchingLoss', 'GANLoss', 'KLDLoss', 'OASISLoss', 'VGGPerceptualLoss',
           'generate_labelmix', 'labelmix_loss']
