"""SPADE's style encoder for ``use_vae`` (official ``ConvEncoder``): image -> (mu, logvar)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm as sn

from mmengine.model import BaseModule

from catgen.models.generators.spade_generator import spade_init_cfg
from catgen.models.weight_init import initialize_at_build
from catgen.registry import MODELS


@MODELS.register_module()
class SPADEEncoder(BaseModule):
    """Convolutional VAE encoder: image resized (bilinear) to ``input_size`` -> mu, logvar.

    Stride-2 3x3 convs ``layer1`` .. (widths ndf, 2ndf, 4ndf, 8ndf, 8ndf, ..), each spectral-norm
    + instance norm (official norm_E 'spectralinstance', no bias), LeakyReLU(0.2) between, down to
    4x4; then Linear ``fc_mu`` and ``fc_var`` to ``z_dim``. At official settings (input 256,
    6 layers, z_dim 256) the layout and module names are those of the official code.

    Args:
        base_channels: official ``ngf`` (64).
        z_dim: length of mu and logvar (official hard-codes 256).
        input_size: images are resized to ``input_size`` x ``input_size`` (official 256; a power
            of two >= 8); the number of layers is ``log2(input_size / 4)``.
        spectral_norm: spectral norm on the convs.
        norm_type: 'instance' (official), 'batch' or 'none' after each conv.
        init_type: weight initialisation, official 'xavier'.
        init_gain: gain of that initialisation (official 0.02).
        init_cfg: MMEngine initialisers overriding the official scheme.
    """

    def __init__(self, base_channels=64, z_dim=256, input_size=256, spectral_norm=True,
                 norm_type='instance', init_type='xavier', init_gain=0.02, init_cfg=None):
        super().__init__(init_cfg=init_cfg or spade_init_cfg(init_type, init_gain))
        num_layers = int(round(math.log2(input_size / 4))) if input_size >= 8 else 0
        if num_layers < 1 or 4 * 2 ** num_layers != input_size:
            raise ValueError(f'input_size must be a power of two >= 8, got {input_size}')
        self.input_size = input_size
        self.z_dim = z_dim
        self.num_layers = num_layers
        nf_prev = 3
        for i in range(num_layers):
            nf = base_channels * min(2 ** i, 8)
            conv = nn.Conv2d(nf_prev, nf, 3, stride=2, padding=1)
            if spectral_norm:
                conv = sn(conv)
            if norm_type == 'none':
                layer = conv
            else:
                conv.bias = None  # meaningless before a norm (as official)
                if norm_type == 'instance':
                    norm = nn.InstanceNorm2d(nf, affine=False)
                elif norm_type == 'batch':
                    norm = nn.BatchNorm2d(nf, affine=True)
                else:
                    raise ValueError(f"norm_type must be 'instance', 'batch' or 'none', "
                                     f'got {norm_type!r}')
                layer = nn.Sequential(conv, norm)
            self.add_module(f'layer{i + 1}', layer)
            nf_prev = nf
        self.fc_mu = nn.Linear(nf_prev * 4 * 4, z_dim)
        self.fc_var = nn.Linear(nf_prev * 4 * 4, z_dim)
        self.actvn = nn.LeakyReLU(0.2)
        initialize_at_build(self)

    def forward(self, img):
        """img: Tensor[B, 3, H, W] in [-1, 1] -> (mu, logvar), each Tensor[B, z_dim]."""
        if img.shape[2:] != (self.input_size, self.input_size):
            img = F.interpolate(img, size=(self.input_size, self.input_size), mode='bilinear')
        x = img
        for i in range(self.num_layers):
            if i > 0:
                x = self.actvn(x)
            x = getattr(self, f'layer{i + 1}')(x)
        x = self.actvn(x).flatten(1)
        return self.fc_mu(x), self.fc_var(x)

    @staticmethod
    def reparameterize(mu, logvar):
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) (official)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
