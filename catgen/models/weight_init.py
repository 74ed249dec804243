"""The official OASIS / SPADE weight initialisation as MMEngine ``init_cfg``.

Both official repositories initialise every conv and linear weight with one scheme (OASIS:
Xavier-normal with gain 0.02; SPADE: ``init_type`` with ``init_variance`` 0.02), every bias with
0 and affine BatchNorm weights with N(1, gain). :func:`official_init_cfg` states that as
MMEngine initialisers (``Xavier``, ``Normal``, ``Kaiming``), so a config can override it with
any ``init_cfg``. :func:`initialize_at_build` applies it when the network is built: a transfer
strategy then loads the source weights on top, and the Runner's later ``init_weights()`` skips
the network (it is marked initialised).

Spectral norm: at build time a spectrally normalised conv's ``weight`` shares its storage with
the ``weight_orig`` parameter, so the initialisers write the parameter itself (as the official
in-place initialisation does).
"""
import torch
import torch.nn as nn
from mmengine.model.weight_init import BaseInit, initialize, update_init_info

from catgen.registry import WEIGHT_INITIALIZERS

#: conv and linear layers the official code initialises (class names, bases included)
WEIGHT_LAYERS = ['Conv2d', 'Linear']


def official_init_cfg(init_type='xavier', gain=0.02):
    """``init_cfg`` (a list of MMEngine initialiser dicts) of the official scheme.

    Args:
        init_type: 'xavier' (Xavier-normal, ``gain``; OASIS and SPADE's default), 'normal'
            (N(0, gain)), 'xavier_uniform' (Xavier-uniform, gain 1), 'kaiming' (He-normal,
            fan-in); 'none' (None: PyTorch's default initialisation).
        gain: the gain / std (official 0.02).

    Returns:
        list of dicts, or None for 'none'.
    """
    bias_free = dict(bias=0, layer=WEIGHT_LAYERS)
    weights = {
        'xavier': dict(type='Xavier', gain=gain, distribution='normal', **bias_free),
        'normal': dict(type='Normal', mean=0.0, std=gain, **bias_free),
        'xavier_uniform': dict(type='Xavier', gain=1.0, distribution='uniform', **bias_free),
        'kaiming': dict(type='Kaiming', a=0, mode='fan_in', nonlinearity='leaky_relu',
                        distribution='normal', **bias_free),
    }
    if init_type == 'none':
        return None
    if init_type not in weights:
        raise ValueError(f'init_type must be one of {tuple(weights) + ("none",)}, '
                         f'got {init_type!r}')
    norms = dict(type='Normal', mean=1.0, std=gain, bias=0, layer=['BatchNorm2d'])
    return [weights[init_type], norms]


def initialize_at_build(module):
    """Apply ``module.init_cfg`` now (MMEngine's ``initialize``) and mark ``module`` initialised.

    Networks are initialised when built, before a transfer strategy copies source weights into
    them. Skipped on the ``meta`` device (parameter counting), where there is nothing to write.
    """
    params = list(module.parameters())
    on_meta = bool(params) and all(p.device == torch.device('meta') for p in params)
    if module.init_cfg and not on_meta:
        initialize(module, module.init_cfg)
    module._is_init = True
    return module


@WEIGHT_INITIALIZERS.register_module(name='Orthogonal')
class OrthogonalInit(BaseInit):
    """Orthogonal weights with ``gain`` (``torch.nn.init.orthogonal_``), biases ``bias``: the
    official SPADE ``init_type='orthogonal'``, which MMEngine has no initialiser for.

    Args:
        gain: scaling factor.
        **kwargs: ``bias``, ``layer`` as MMEngine's ``BaseInit``.
    """

    def __init__(self, gain=1.0, **kwargs):
        super().__init__(**kwargs)
        self.gain = gain

    def __call__(self, module):
        def init(m):
            names = {type(m).__name__} | {b.__name__ for b in type(m).__mro__}
            if self.wholemodule or names & set(self.layer or []):
                if getattr(m, 'weight', None) is not None:
                    nn.init.orthogonal_(m.weight, gain=self.gain)
                if getattr(m, 'bias', None) is not None:
                    nn.init.constant_(m.bias, self.bias)

        module.apply(init)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=f'OrthogonalInit: gain={self.gain}, '
                                               f'bias={self.bias}')
