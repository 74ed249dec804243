from .base_synthesizer import ConditionalGANSynthesizer
from .oasis_synthesizer import OASISSynthesizer
from .spade_synthesizer import SPADESynthesizer

__all__ = ['ConditionalGANSynthesizer', 'OASISSynthesizer', 'SPADESynthesizer']
