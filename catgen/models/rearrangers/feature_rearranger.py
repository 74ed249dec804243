"""FeatureRearranger: move a sample's generator features to follow another proxy mask (SIS-UG).

Chae et al. (NeurIPS 2023) rearrange the feature maps of a pretrained unconditional generator
by attention: every position of the *target* proxy mask asks (query) for the source positions
(keys) whose features should go there, and takes a weighted average of them (values). The
output replaces the generator's features at that level and the rest of the generator renders
it. The paper leaves the sizes open; catgen's module (documented defaults, docs/sis_ug.md):

- query tokens: ``embed(one-hot target proxy mask) + PE`` -> ``depth`` 3x3 conv blocks
  (GroupNorm, SiLU, residual) -> a linear projection per head;
- key tokens: ``embed(one-hot source proxy mask) + proj(normalised source features) + PE`` ->
  the same kind of blocks -> a linear projection per head;
- attention weights ``softmax(q k^T / sqrt(d_head))`` over the ``h * w`` source positions,
  averaged over the heads, applied to the *unprojected* values: the source features and its
  RGB image so far (the generator's skip branch), so that every output vector is a convex
  combination of the source's own vectors: in the generator's feature space, with its style;
- an optional refinement: a 3x3 conv net reading ``[rearranged, query embedding]`` whose last
  layer is zero-initialised, added to the features (a correction the attention cannot make,
  e.g. at new boundaries); it starts as the identity.

``PE`` is a fixed 2D sinusoidal encoding of the position (half the channels for y, half for x):
with the target mask equal to the source's the attention can match positions and reproduce the
input (the self-reconstruction the paper trains with).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


def sinusoidal_position_encoding(channels, height, width, device=None):
    """Fixed 2D sine/cosine position encoding Tensor[channels, height, width]: the first half
    of the channels encodes y, the second x, each as ``sin/cos(pos * 10000^(-2i/n))`` with pos
    the centre of the pixel in [0, 1) scaled by 64 (so resolutions share frequencies)."""
    if channels % 4:
        raise ValueError(f'position encoding channels must be a multiple of 4, got {channels}')
    quarter = channels // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device) / quarter)

    def encode(n):
        pos = (torch.arange(n, device=device, dtype=torch.float32) + 0.5) / n * 64
        ang = pos[:, None] * freq[None]
        return torch.cat([ang.sin(), ang.cos()], dim=1)  # [n, channels / 2]

    ey = encode(height).t()[:, :, None].expand(-1, -1, width)
    ex = encode(width).t()[:, None, :].expand(-1, height, -1)
    return torch.cat([ey, ex], dim=0)


class ConvBlock(nn.Module):
    """Residual ``GroupNorm -> SiLU -> conv3x3`` x 2 (``channels`` in and out)."""

    def __init__(self, channels, groups=8):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(min(groups, channels), channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(min(groups, channels), channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


@MODELS.register_module()
class FeatureRearranger(nn.Module):
    """Attention from a target proxy mask (queries) to a source's features (keys, values).

    Args:
        num_clusters: k, the proxy masks' number of clusters.
        feature_channels: channels of the generator's features at the level (C).
        value_channels: channels carried along with the features as values (3: the RGB skip
            image of StyleGAN2 at that resolution; 0: none).
        embed_channels: width of the query/key networks (multiple of 4, the position
            encoding's).
        depth: conv blocks of each of the query and key networks.
        heads: attention heads (their weights are averaged).
        head_channels: query/key width of each head.
        refine: add the zero-initialised refinement net.
    """

    def __init__(self, num_clusters, feature_channels, value_channels=3, embed_channels=64,
                 depth=2, heads=4, head_channels=32, refine=True):
        super().__init__()
        self.num_clusters = int(num_clusters)
        self.feature_channels = int(feature_channels)
        self.value_channels = int(value_channels)
        self.embed_channels = int(embed_channels)
        self.heads = int(heads)
        self.head_channels = int(head_channels)
        e = self.embed_channels
        self.query_embed = nn.Conv2d(self.num_clusters, e, 3, padding=1)
        self.key_embed = nn.Conv2d(self.num_clusters, e, 3, padding=1)
        self.key_features = nn.Conv2d(self.feature_channels, e, 1)
        self.query_net = nn.Sequential(*[ConvBlock(e) for _ in range(depth)])
        self.key_net = nn.Sequential(*[ConvBlock(e) for _ in range(depth)])
        self.to_q = nn.Conv2d(e, self.heads * self.head_channels, 1)
        self.to_k = nn.Conv2d(e, self.heads * self.head_channels, 1)
        self.refine = None
        if refine:
            c = self.feature_channels + self.value_channels
            last = nn.Conv2d(e, c, 3, padding=1)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
            self.refine = nn.Sequential(nn.Conv2d(c + e, e, 3, padding=1), ConvBlock(e),
                                        nn.SiLU(), last)

    def one_hot(self, mask):
        """int Tensor[B, h, w] (cluster ids) -> float Tensor[B, k, h, w]; a float input is taken
        as already soft/one-hot and returned."""
        if mask.is_floating_point():
            return mask
        return F.one_hot(mask.long(), self.num_clusters).permute(0, 3, 1, 2).float()

    def attention(self, source_feats, source_mask, target_mask):
        """The head-averaged attention weights Tensor[B, h*w (target), h*w (source)]."""
        b, _, h, w = source_feats.shape
        pe = sinusoidal_position_encoding(self.embed_channels, h, w, source_feats.device)
        q = self.query_net(self.query_embed(self.one_hot(target_mask)) + pe)
        k = self.key_net(self.key_embed(self.one_hot(source_mask)) +
                         self.key_features(F.normalize(source_feats, dim=1)) + pe)
        q = self.to_q(q).view(b, self.heads, self.head_channels, h * w).transpose(2, 3)
        k = self.to_k(k).view(b, self.heads, self.head_channels, h * w)
        logits = q @ k / math.sqrt(self.head_channels)  # [B, heads, hw_t, hw_s]
        return logits.softmax(-1).mean(1), q

    def forward(self, source_feats, source_mask, target_mask, extra=None):
        """Rearrange ``source_feats`` (and ``extra``) to follow ``target_mask``.

        Args:
            source_feats: Tensor[B, C, h, w], the generator's features of the source sample.
            source_mask: its proxy mask, int Tensor[B, h, w] (or one-hot float [B, k, h, w]).
            target_mask: the wanted proxy mask, same forms (a mapper's soft output works too).
            extra: Tensor[B, value_channels, h, w] carried along (StyleGAN2's RGB skip), or
                None when ``value_channels`` is 0.

        Returns:
            ``(features Tensor[B, C, h, w], extra Tensor[B, value_channels, h, w] or None,
            attention Tensor[B, h*w, h*w])``.
        """
        b, c, h, w = source_feats.shape
        if c != self.feature_channels:
            raise ValueError(f'FeatureRearranger expects {self.feature_channels} feature '
                             f'channels, got {c}')
        values = source_feats if extra is None else torch.cat([source_feats, extra], 1)
        if values.shape[1] != self.feature_channels + self.value_channels:
            raise ValueError(f'FeatureRearranger carries {self.value_channels} extra channels, '
                             f'got {values.shape[1] - c}')
        attn, _ = self.attention(source_feats, source_mask, target_mask)
        out = (values.flatten(2) @ attn.transpose(1, 2)).view(b, -1, h, w)
        if self.refine is not None:
            pe = sinusoidal_position_encoding(self.embed_channels, h, w, source_feats.device)
            query = self.query_embed(self.one_hot(target_mask)) + pe
            out = out + self.refine(torch.cat([out, query], 1))
        feats, rest = out[:, :c], out[:, c:]
        return feats, (rest if extra is not None else None), attn
