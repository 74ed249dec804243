from .base_synthesizer import ConditionalGANSynthesizer
from .oasis_synthesizer import OASISSynthesizer
from .spade_synthesizer import SPADESynthesizer
from .stylegan2_synthesizer import StyleGAN2Synthesizer

__all__ = ['ConditionalGANSynthesizer', 'OASISSynthesizer', 'SPADESynthesizer',
           'StyleGAN2Synthesizer']
