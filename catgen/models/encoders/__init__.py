from .class_style_encoder import ClassStyleEncoder
from .psp_encoder import GradualStyleBlock, PSPEncoder

__all__ = ['ClassStyleEncoder', 'GradualStyleBlock', 'PSPEncoder']
