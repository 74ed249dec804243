from .affinity_input_generator import AffinityInputGenerator
from .ca2sis_generator import CA2SISGenerator
from .oasis_generator import OASISGenerator
from .spade_encoder import SPADEEncoder
from .spade_generator import SPADEGenerator
from .stylegan2_generator import StyleGAN2Generator

__all__ = ['AffinityInputGenerator', 'CA2SISGenerator', 'OASISGenerator', 'SPADEEncoder', 'SPADEGenerator',
           'StyleGAN2Generator']
