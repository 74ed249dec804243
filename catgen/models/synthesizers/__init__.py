from .base_synthesizer import ConditionalGANSynthesizer
from .ca2sis_synthesizer import CA2SISSynthesizer
from .fewshot_smis_synthesizer import FewshotSMISSynthesizer
from .oasis_synthesizer import OASISSynthesizer
from .prior_synthesizer import PriorSynthesizer
from .sisug_synthesizer import SISUGSynthesizer
from .spade_synthesizer import SPADESynthesizer
from .stylegan2_synthesizer import StyleGAN2Synthesizer

__all__ = ['CA2SISSynthesizer', 'ConditionalGANSynthesizer', 'FewshotSMISSynthesizer', 'OASISSynthesizer',
           'PriorSynthesizer', 'SISUGSynthesizer', 'SPADESynthesizer',
           'StyleGAN2Synthesizer']
