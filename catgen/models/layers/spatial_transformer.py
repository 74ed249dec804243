"""SpatialTransformer: a feature map attends to itself and to per-class tokens (CA2-SIS).

The latent-diffusion transformer block on a feature map, as CA2-SIS's decoder uses it:

    x0 = x
    t  = proj_in(GN32(x))  -> tokens Tensor[B, HW, I]              (I = heads * head_dim)
    t  = t + SelfAttention(LN1(t))                                 (optional)
    t  = t + CrossAttention(LN2(t), context = class tokens)         (one key per class)
    t  = t + GEGLU-FeedForward(LN3(t))                             (4x)
    out = x0 + proj_out_zero(t as a map)

Attention: queries without bias, keys and values without bias, an output projection with bias;
``softmax(q k^T / sqrt(head_dim))``. The cross-attention's pre-softmax logits, averaged over the
heads and laid out as a map per class (Tensor[B, K, H, W]), are returned: CA2-SIS's attention
loss asks each class token's map to be that class's mask (:func:`attention_loss`).
"""
import math

import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Multi-head attention of ``x`` (queries) over ``context`` (keys, values; ``x`` if None).

    Args:
        query_dim: width of the query tokens (I).
        context_dim: width of the context tokens (None: ``query_dim``, self-attention).
        heads: attention heads.
        head_dim: width per head.
    """

    def __init__(self, query_dim, context_dim=None, heads=8, head_dim=64):
        super().__init__()
        inner = heads * head_dim
        context_dim = query_dim if context_dim is None else context_dim
        self.heads, self.head_dim = int(heads), int(head_dim)
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x, context=None, return_logits=False):
        """x: Tensor[B, N, query_dim]; context: Tensor[B, M, context_dim] or None ->
        Tensor[B, N, query_dim] (and the logits Tensor[B, heads, N, M])."""
        context = x if context is None else context
        b, n, _ = x.shape
        m = context.shape[1]
        h, d = self.heads, self.head_dim
        q = self.to_q(x).view(b, n, h, d).transpose(1, 2)
        k = self.to_k(context).view(b, m, h, d).transpose(1, 2)
        v = self.to_v(context).view(b, m, h, d).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(d)
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, n, h * d)
        out = self.to_out(out)
        return (out, logits) if return_logits else out


class GEGLU(nn.Module):
    """``Linear(dim -> 2 * hidden)``; value * GELU(gate) (the first half is the value)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.proj = nn.Linear(dim, hidden * 2)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward ``dim -> mult * dim -> dim``."""

    def __init__(self, dim, mult=4, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, dim * mult), nn.Dropout(dropout),
                                 nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class TransformerBlock(nn.Module):
    """(self-attention), cross-attention, feed-forward; pre-LayerNorm residuals."""

    def __init__(self, dim, heads, head_dim, context_dim, self_attention=True):
        super().__init__()
        self.attn1 = Attention(dim, None, heads, head_dim) if self_attention else None
        self.norm1 = nn.LayerNorm(dim) if self_attention else None
        self.attn2 = Attention(dim, context_dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, x, context):
        if self.attn1 is not None:
            x = x + self.attn1(self.norm1(x))
        out, logits = self.attn2(self.norm2(x), context, return_logits=True)
        x = x + out
        return x + self.ff(self.norm3(x)), logits


class SpatialTransformer(nn.Module):
    """A transformer block on a feature map, with per-class tokens as the cross-attention context.

    Args:
        channels: channels of the feature map (C).
        heads: attention heads.
        head_dim: width per head (the transformer works at ``heads * head_dim``).
        context_dim: width of the class tokens (CA2-SIS: 1280).
        self_attention: whether the block has self-attention (not at 128 and 256 px in CA2-SIS).
    """

    def __init__(self, channels, heads, head_dim, context_dim, self_attention=True):
        super().__init__()
        inner = heads * head_dim
        self.norm = nn.GroupNorm(min(32, channels), channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([
            TransformerBlock(inner, heads, head_dim, context_dim, self_attention)])
        self.proj_out = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x, context):
        """x: Tensor[B, C, H, W]; context: Tensor[B, K, context_dim] -> ``(Tensor[B, C, H, W],
        head-averaged cross-attention logits Tensor[B, K, H, W])``."""
        b, _, h, w = x.shape
        t = self.proj_in(self.norm(x))
        t = t.flatten(2).transpose(1, 2)
        t, logits = self.transformer_blocks[0](t, context)
        t = t.transpose(1, 2).reshape(b, -1, h, w)
        maps = logits.mean(1).transpose(1, 2).reshape(b, -1, h, w)
        return x + self.proj_out(t), maps


def attention_loss(maps, seg):
    """CA2-SIS's attention loss of one layer: binary cross-entropy with logits between each
    class token's head-averaged attention logits and that class's mask.

    Args:
        maps: Tensor[B, K, h, w] (:class:`SpatialTransformer`'s second output).
        seg: one-hot Tensor[B, K, H, W] (resized, nearest, to h x w).

    Returns:
        scalar: the mean over classes of each class's mean BCE over the batch and pixels.
    """
    if seg.shape[-2:] != maps.shape[-2:]:
        seg = F.interpolate(seg.float(), size=maps.shape[-2:], mode='nearest')
    if seg.shape[1] != maps.shape[1]:
        raise ValueError(f'attention_loss: {maps.shape[1]} class tokens but a {seg.shape[1]}-'
                         'channel mask')
    return F.binary_cross_entropy_with_logits(maps, seg.to(maps.dtype))


__all__ = ['Attention', 'FeedForward', 'GEGLU', 'SpatialTransformer', 'TransformerBlock',
           'attention_loss']
