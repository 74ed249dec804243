from .autocast_optim_wrapper import AutocastOptimWrapper
from .gan_optim_wrapper_constructor import GANOptimWrapperConstructor
from .ranger import Ranger

__all__ = ['AutocastOptimWrapper', 'GANOptimWrapperConstructor', 'Ranger']
