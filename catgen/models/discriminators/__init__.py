from .multiscale_discriminator import MultiScalePatchGANDiscriminator
from .oasis_discriminator import OASISDiscriminator
from .patch_head import PatchHead
from .patchgan_discriminator import PatchGANDiscriminator
from .stylegan2_discriminator import StyleGAN2Discriminator

__all__ = ['MultiScalePatchGANDiscriminator', 'OASISDiscriminator', 'PatchGANDiscriminator',
           'PatchHead', 'StyleGAN2Discriminator']
