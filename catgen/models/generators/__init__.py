from .affinity_input_generator import AffinityInputGenerator
from .oasis_generator import OASISGenerator
from .spade_encoder import SPADEEncoder
from .spade_generator import SPADEGenerator
from .stylegan2_generator import StyleGAN2Generator

__all__ = ['AffinityInputGenerator', 'OASISGenerator', 'SPADEEncoder', 'SPADEGenerator',
           'StyleGAN2Generator']
