"""CA2-SIS generator (Fontanini et al.): class-adaptive cross-attention semantic image synthesis.

The layout enters once, as a *mask embedding*; the appearance enters as one *style token per
class*, which every decoder stage reads by cross-attention (the official ``RGB_model`` of
TFonta/CA2SIS, described in ``../shared/docs/methods.md``; re-implemented, no code copied):

    mask embedder: one-hot seg without its first channel (the background / "other" class,
        ``exclude_bg``) -> each class channel resized (nearest) to ``embed_input`` x
        ``embed_input``, flattened, one shared Linear to ``embed_grid ** 2``, reshaped to an
        ``embed_grid`` x ``embed_grid`` map per class -> a 1x1 conv to ``embed_channels``
    tokens: :class:`~catgen.models.encoders.ClassStyleEncoder` of a style image and its label
        map (training reconstructs the real image from its own styles), or the
        :class:`~catgen.models.layers.class_mapping_network.ClassMappingNetwork` of noise
        (random styles; absent classes get zero tokens)
    decoder: per stage a :class:`~catgen.models.layers.gn_resblock.GNResBlock` (nearest x2
        upsampling from the second stage on) then a
        :class:`~catgen.models.layers.spatial_transformer.SpatialTransformer` whose
        cross-attention reads the tokens; a 1x1 conv to RGB, tanh

Official stages (256 px, ``embed_grid`` 16): 16 px 256 ch (8 heads x 64, self-attention),
32 px 128 ch (8 x 64, self), 64 px 64 ch (8 x 64, self), 128 px 32 ch (8 x 64), 256 px 32 ch
(4 x 32). Parameter counts at the official settings (tested on the meta device): 19 classes
(CelebAMask-HQ) 77,229,243 (48,985,019 without the mapping network), 151 classes (ADE20K)
393,519,195 (174,586,715).

The forward pass also returns, per transformer, the head-averaged cross-attention logits laid
out as class maps (``return_attention=True``): the synthesizer's attention loss
(:func:`~catgen.models.layers.spatial_transformer.attention_loss`) asks each to be its class's
mask. (Transfer-protocol support, the synthesizer and configs: issue 16, in progress.)
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.encoders.class_style_encoder import ClassStyleEncoder
from catgen.models.layers.class_mapping_network import ClassMappingNetwork
from catgen.models.layers.gn_resblock import GNResBlock
from catgen.models.layers.spatial_transformer import SpatialTransformer
from catgen.registry import MODELS

#: the official decoder: (channels, heads, head_dim, self_attention) per stage, 16 -> 256 px
OFFICIAL_STAGES = ((256, 8, 64, True), (128, 8, 64, True), (64, 8, 64, True),
                   (32, 8, 64, False), (32, 4, 32, False))


@MODELS.register_module()
class CA2SISGenerator(nn.Module):
    """``G(seg, style_img) -> img`` through class tokens and cross-attention (module doc).

    Args:
        num_classes: K, channels of the one-hot label map (every class gets a style token).
        exclude_bg: the mask embedding drops the first channel (official ``--exclude_bg``, on
            in the official scripts).
        embed_input: size the class masks are resized to before the shared linear (128).
        embed_grid: side of the per-class embedding map, the decoder's first resolution (16).
        embed_channels: channels of the embedded mask (512).
        stages: decoder stages, ``(channels, heads, head_dim, self_attention)`` each; every
            stage after the first doubles the resolution (official: ``OFFICIAL_STAGES``).
        style_encoder: options of :class:`ClassStyleEncoder` (``num_down`` 6, ``num_up`` 5,
            ``num_features`` 4, ``style_dim`` 256); the token width is ``num_up * style_dim``.
        mapping: options of :class:`ClassMappingNetwork` (``z_dim`` 16, ``hidden`` 512, ...),
            or None for no mapping network (styles only from images).
        img_channels: image channels (3).
    """

    def __init__(self, num_classes, exclude_bg=True, embed_input=128, embed_grid=16,
                 embed_channels=512, stages=OFFICIAL_STAGES, style_encoder=None, mapping=None,
                 img_channels=3):
        super().__init__()
        self.num_classes = k = int(num_classes)
        self.exclude_bg = bool(exclude_bg)
        self.embed_input, self.embed_grid = int(embed_input), int(embed_grid)
        self.output_size = (self.embed_grid * 2 ** (len(stages) - 1),) * 2
        self.encs = nn.Linear(self.embed_input ** 2, self.embed_grid ** 2)
        embed_classes = k - 1 if self.exclude_bg else k
        self.reshape_conv = nn.Conv2d(embed_classes, embed_channels, 1)
        self.style_encoder = ClassStyleEncoder(k, img_channels=img_channels,
                                               **(style_encoder or {}))
        token_dim = self.style_encoder.token_dim
        self.noise_encoder = (None if mapping is None else
                              ClassMappingNetwork(k, token_dim=token_dim, **mapping))
        self.z_dim = 0 if self.noise_encoder is None else self.noise_encoder.z_dim
        self.res = nn.ModuleList()
        self.cross = nn.ModuleList()
        ch = embed_channels
        for i, (out_ch, heads, head_dim, self_att) in enumerate(stages):
            self.res.append(GNResBlock(ch, out_ch, upsample=i > 0))
            self.cross.append(SpatialTransformer(out_ch, heads, head_dim, token_dim, self_att))
            ch = out_ch
        self.out_conv = nn.Conv2d(ch, img_channels, 1)

    # ------------------------------------------------------------------ parts
    def embed_mask(self, seg):
        """One-hot Tensor[B, K, H, W] -> the embedded layout Tensor[B, embed_channels, g, g]."""
        m = seg[:, 1:] if self.exclude_bg else seg
        m = F.interpolate(m.float(), size=(self.embed_input,) * 2, mode='nearest')
        b, c = m.shape[:2]
        e = self.encs(m.flatten(2)).view(b, c, self.embed_grid, self.embed_grid)
        return self.reshape_conv(e)

    def tokens(self, seg, style_img=None, z=None):
        """Style tokens Tensor[B, K, token_dim]: of ``style_img`` (Tensor[B, 3, H, W], with
        ``seg`` as its label map), else of noise ``z`` (Tensor[B, z_dim]; drawn when None)."""
        if style_img is not None:
            return self.style_encoder(style_img, seg)
        if self.noise_encoder is None:
            raise ValueError('CA2SISGenerator without a mapping network needs a style image '
                             '(style_img): build it with mapping=dict() for random styles')
        if z is None:
            z = torch.randn(seg.shape[0], self.z_dim, device=seg.device)
        return self.noise_encoder(z, seg)

    def decode(self, layout, tokens, return_attention=False):
        """The decoder: layout Tensor[B, embed_channels, g, g], tokens Tensor[B, K, D] ->
        image Tensor[B, 3, S, S] in [-1, 1] (and the attention maps, one Tensor[B, K, h, w]
        per stage)."""
        x = layout
        maps = []
        for res, cross in zip(self.res, self.cross):
            x, m = cross(res(x), tokens)
            maps.append(m)
        img = torch.tanh(self.out_conv(x))
        return (img, maps) if return_attention else img

    def forward(self, seg, z=None, style_img=None, return_attention=False):
        """Generate images.

        Args:
            seg: one-hot Tensor[B, K, H, W].
            z: noise Tensor[B, z_dim] for random styles (the mapping network), or None.
            style_img: Tensor[B, 3, H, W] whose styles to use (its label map is ``seg``);
                takes precedence over ``z``.
            return_attention: also return the per-stage attention maps.

        Returns:
            Tensor[B, 3, S, S] (and a list of Tensor[B, K, h, w]).
        """
        if seg.shape[1] != self.num_classes:
            raise ValueError(f'CA2SISGenerator expects a {self.num_classes}-channel label map, '
                             f'got {seg.shape[1]}')
        return self.decode(self.embed_mask(seg), self.tokens(seg, style_img, z),
                           return_attention)
