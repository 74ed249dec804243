from .base_synthesizer import ConditionalGANSynthesizer
from .fewshot_smis_synthesizer import FewshotSMISSynthesizer
from .oasis_synthesizer import OASISSynthesizer
from .spade_synthesizer import SPADESynthesizer
from .stylegan2_synthesizer import StyleGAN2Synthesizer

__all__ = ['ConditionalGANSynthesizer', 'FewshotSMISSynthesizer', 'OASISSynthesizer',
           'SPADESynthesizer',
           'StyleGAN2Synthesizer']
