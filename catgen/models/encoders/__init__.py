from .psp_encoder import GradualStyleBlock, PSPEncoder

__all__ = ['GradualStyleBlock', 'PSPEncoder']
