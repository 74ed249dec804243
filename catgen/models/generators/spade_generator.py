"""The SPADE generator (Park et al., CVPR 2019), laid out as the official NVlabs/SPADE code.

A 3x3 conv lifts the label map, downsampled (nearest) to ``1 / 2**num_up`` of the output size, to
``16 * ngf`` channels (or, with ``use_vae``, a Linear maps ``z`` to that tensor, ``z`` encoded
from a style image by the :class:`~catgen.models.generators.spade_encoder.SPADEEncoder` that
the generator then holds as ``encoder``); then SPADE
residual blocks ``head_0``, ``G_middle_0``, ``G_middle_1``, ``up_0`` .. ``up_3`` (and ``up_4`` for
'most') with x2 nearest upsampling between them; LeakyReLU(0.2) -> 3x3 conv -> tanh.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmengine.model import BaseModule

from catgen.models.layers.spade_resblock import SPADEResBlock
from catgen.registry import MODELS

from ..protocol import ClassSlice, TransferableGenerator
from ..weight_init import WEIGHT_LAYERS, initialize_at_build, official_init_cfg
from .oasis_generator import reset_scale_shift, spade_class_slices, spade_scale_shift

# 'normal': 5 upsamplings (1/32 of the output), 'more': 6, 'most': 7 (as the official code).
NUM_UP_LAYERS = {'normal': 5, 'more': 6, 'most': 7}


def spade_init_cfg(init_type='xavier', gain=0.02):
    """The official SPADE ``BaseNetwork.init_weights`` as an MMEngine ``init_cfg``.

    ``init_type``: 'normal' N(0, gain), 'xavier' (official default) Xavier-normal with ``gain``,
    'xavier_uniform' (gain 1), 'kaiming', 'orthogonal' (``gain``), 'none' (PyTorch's default);
    biases 0; affine BatchNorm weights N(1, gain). See :mod:`catgen.models.weight_init`.
    """
    if init_type == 'orthogonal':  # MMEngine has no orthogonal initialiser: catgen's own
        return [dict(type='catgen.Orthogonal', gain=gain, bias=0, layer=WEIGHT_LAYERS),
                dict(type='Normal', mean=1.0, std=gain, bias=0, layer=['BatchNorm2d'])]
    return official_init_cfg(init_type, gain)


@MODELS.register_module()
class SPADEGenerator(TransferableGenerator, BaseModule):
    """SPADE generator: one-hot label map (and, with ``use_vae``, a style code z) -> RGB image.

    Args:
        num_classes: channels of the semantic map, the don't-care channel included (ADE20K 151).
        extra_label_channels: channels of the conditioning map after the ``num_classes`` class
            channels: 1 for SPADE's instance edge map (official ``semantic_nc = label_nc +
            1``), else 0. Filled in from the data preprocessor (``instance_edges=True``).
        base_channels: ngf; the widest blocks have ``16 * ngf`` channels (official 64).
        crop_size: output width; with ``use_vae`` it fixes the latent grid (Linear size).
        aspect_ratio: output width / height (Cityscapes 2.0); used with ``use_vae``.
        num_upsampling_layers: 'normal' (5 upsamplings), 'more' (6) or 'most' (7, adds ``up_4``).
        use_vae: start from a Linear on ``z`` instead of a conv on the downsampled label map,
            and hold a style encoder (``encoder``) that maps an image to ``(mu, logvar)``.
        z_dim: length of ``z`` when ``use_vae`` (official 256); ``self.z_dim`` is 0 otherwise.
        encoder: config of that style encoder (``SPADEEncoder``; its ``base_channels`` and
            ``z_dim`` default to the generator's, as the official netE uses ngf and z_dim), or
            None for a ``use_vae`` generator without one (z only from noise). Its parameters are
            the generator's (one optimizer, as the official ``G_params += netE.parameters()``).
        spectral_norm: spectral norm on the residual blocks' convs (official 'spectral...').
        norm_type: parameter-free norm inside SPADE, 'batch' (official syncbatch; catgen's
            SyncBatchNorm2d, synchronised automatically under DDP) or 'instance'.
        spade_hidden: width of SPADE's shared embedding (official hard-codes 128).
        init_type: weight initialisation, official 'xavier' (see :func:`spade_init_cfg`).
        init_gain: gain / std of that initialisation (official ``init_variance`` 0.02).
        init_cfg: MMEngine initialisers overriding the official scheme.
        norm_affine: a per-channel scale (1) and shift (0) after every SPADE norm: the sites BSA
            adapts (off in SPADE; BSA configs turn it on).

    Model protocol: class slices ``fc`` (without ``use_vae``) and every ``...mlp_shared.0``
    (their first ``num_classes`` input channels; the edge channel comes after them and is not a
    class); feature levels ``head_0``, ``G_middle_0``, ``G_middle_1``, ``up_0`` .. ``up_3``
    (``up_4``).
    """

    def __init__(self, num_classes, base_channels=64, crop_size=256, aspect_ratio=1.0,
                 num_upsampling_layers='normal', use_vae=False, z_dim=256, spectral_norm=True,
                 norm_type='batch', spade_hidden=128, init_type='xavier', init_gain=0.02,
                 norm_affine=False, init_cfg=None, extra_label_channels=0,
                 encoder=dict(type='SPADEEncoder')):
        super().__init__(init_cfg=init_cfg or spade_init_cfg(init_type, init_gain))
        if num_upsampling_layers not in NUM_UP_LAYERS:
            raise ValueError(f'num_upsampling_layers must be one of {tuple(NUM_UP_LAYERS)}, '
                             f'got {num_upsampling_layers!r}')
        if extra_label_channels < 0:
            raise ValueError(f'extra_label_channels must be >= 0, got {extra_label_channels}')
        self.num_classes = num_classes
        self.extra_label_channels = int(extra_label_channels)
        #: channels of the conditioning map: classes, then the extra (edge) channels
        self.label_nc = label_nc = num_classes + self.extra_label_channels
        self.base_channels = nf = base_channels
        self.num_upsampling_layers = num_upsampling_layers
        self.num_up = NUM_UP_LAYERS[num_upsampling_layers]
        self.use_vae = use_vae
        self.z_dim = z_dim if use_vae else 0
        # Latent grid for use_vae, computed as the official compute_latent_vector_size.
        self.sw = crop_size // (2 ** self.num_up)
        self.sh = round(self.sw / aspect_ratio)
        if use_vae and (self.sw < 1 or self.sh < 1):
            raise ValueError(f'crop_size {crop_size} with aspect_ratio {aspect_ratio} is too small '
                             f'for {self.num_up} upsamplings ({num_upsampling_layers!r}): the '
                             f'latent grid would be {self.sh}x{self.sw}')

        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)

        def block(fin, fout):
            return SPADEResBlock(fin, fout, label_nc, spectral_norm=spectral_norm,
                                 norm_type=norm_type, hidden_nc=spade_hidden,
                                 norm_affine=norm_affine)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, 1 * nf)
        final_nc = nf
        if num_upsampling_layers == 'most':
            self.up_4 = block(1 * nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)  # nearest
        initialize_at_build(self)
        reset_scale_shift(self)  # BSA's sites start as the identity
        self.encoder = None
        if use_vae and encoder is not None:
            # built after initialize_at_build: the encoder initialises itself
            if isinstance(encoder, dict):
                encoder = dict(encoder)
                encoder.setdefault('base_channels', base_channels)
                encoder.setdefault('z_dim', z_dim)
                encoder.setdefault('init_type', init_type)
                encoder.setdefault('init_gain', init_gain)
                encoder = MODELS.build(encoder)
            if getattr(encoder, 'z_dim', z_dim) != z_dim:
                raise ValueError(f'the style encoder gives z of length {encoder.z_dim}, the '
                                 f'generator takes z_dim={z_dim}: make them equal')
            self.encoder = encoder
        self.output_size = ((self.sh * 2 ** self.num_up, self.sw * 2 ** self.num_up)
                            if use_vae else None)

    # ---------------------------------------------------------------- model protocol
    def _block_names(self):
        names = ['head_0', 'G_middle_0', 'G_middle_1', 'up_0', 'up_1', 'up_2', 'up_3']
        return names + (['up_4'] if self.num_upsampling_layers == 'most' else [])

    def class_slices(self):
        first = [] if self.use_vae else [ClassSlice('fc', 'input', 0)]
        return first + spade_class_slices(self, 0)

    def feature_levels(self):
        return tuple(self._block_names())

    def scale_shift(self):
        return spade_scale_shift(self)

    def adapter_keys(self):
        return [f'{name}.{p}' for name in self.scale_shift() for p in ('weight', 'bias')]

    def encode(self, img):
        """Style encoding: img Tensor[B, 3, H, W] in [-1, 1] -> ``(mu, logvar)``, each
        Tensor[B, z_dim]; ``z = mu + exp(logvar / 2) * eps`` is the style code (see
        :meth:`reparameterize`)."""
        if self.encoder is None:
            raise ValueError('this SPADEGenerator has no style encoder: build it with '
                             'use_vae=True (and an encoder config, the default) to encode images')
        return self.encoder(img)

    @staticmethod
    def reparameterize(mu, logvar, eps=None):
        """``z = mu + exp(logvar / 2) * eps`` (official), ``eps`` Tensor[B, z_dim] or None to
        draw it from N(0, I)."""
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * eps

    def _initial_features(self, seg, z):
        """The ``16 * ngf`` tensor at the latent grid, from the label map or from ``z``."""
        b, _, h, w = seg.shape
        scale = 2 ** self.num_up
        if self.use_vae:
            if (h, w) != (self.sh * scale, self.sw * scale):
                raise ValueError(
                    f'SPADEGenerator(use_vae=True) was built for {self.sh * scale}x'
                    f'{self.sw * scale} label maps (crop_size, aspect_ratio, '
                    f'num_upsampling_layers), got {h}x{w}; build it with matching crop_size.')
            if z is None:
                z = torch.randn(b, self.z_dim, dtype=seg.dtype, device=seg.device)
            elif z.shape != (b, self.z_dim):
                raise ValueError(f'z must be Tensor[{b}, {self.z_dim}], got {tuple(z.shape)}')
            x = self.fc(z)
            return x.view(b, 16 * self.base_channels, self.sh, self.sw)
        if z is not None and z.numel() > 0:
            raise ValueError('SPADEGenerator(use_vae=False) takes no noise (z_dim == 0); pass '
                             f'z=None, got a tensor of shape {tuple(z.shape)}')
        if h % scale or w % scale:
            raise ValueError(f'label map size {h}x{w} must be divisible by 2**{self.num_up} = '
                             f'{scale} (num_upsampling_layers={self.num_upsampling_layers!r})')
        x = F.interpolate(seg, size=(h // scale, w // scale))  # nearest, as official
        return self.fc(x)

    def forward(self, seg, z=None, return_features=False):
        """Synthesise images.

        Args:
            seg: Tensor[B, num_classes + extra_label_channels, H, W], one-hot (or soft) label
                map, then the instance edge map when built with one. Without ``use_vae``,
                H and W must be divisible by ``2**num_up`` (32 for 'normal') and the output has
                the same size; with ``use_vae`` they must equal the size the model was built for.
            z: Tensor[B, z_dim] or None; with ``use_vae`` None draws z ~ N(0, I) (a random
                style; an image's style is ``reparameterize(*encode(img))``); must be None
                (or empty) without ``use_vae``.
            return_features: also return the outputs of the residual blocks.

        Returns:
            Tensor[B, 3, H, W] in [-1, 1]; with ``return_features`` a tuple ``(img, feats)``,
            ``feats`` an OrderedDict of the block outputs, keyed head_0, G_middle_0,
            G_middle_1, up_0, .., up_3 (, up_4).
        """
        if seg.dim() != 4 or seg.shape[1] != self.label_nc:
            extra = (f' + {self.extra_label_channels} (instance edges)'
                     if self.extra_label_channels else '')
            raise ValueError(f'seg must be Tensor[B, {self.label_nc}, H, W] (num_classes '
                             f'{self.num_classes}{extra}), got {tuple(seg.shape)}')
        feats = OrderedDict()
        x = self._initial_features(seg, z)
        x = self.head_0(x, seg)
        feats['head_0'] = x
        x = self.G_middle_0(self.up(x), seg)
        feats['G_middle_0'] = x
        if self.num_upsampling_layers in ('more', 'most'):
            x = self.up(x)
        x = self.G_middle_1(x, seg)
        feats['G_middle_1'] = x
        for name in self._block_names()[3:]:
            x = getattr(self, name)(self.up(x), seg)
            feats[name] = x
        img = torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))
        if return_features:
            return img, feats
        return img

