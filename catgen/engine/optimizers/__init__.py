from .autocast_optim_wrapper import AutocastOptimWrapper
from .gan_optim_wrapper_constructor import GANOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'GANOptimWrapperConstructor']
