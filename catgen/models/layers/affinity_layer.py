"""AffinityLayer: CAT's first layer, a 1x1 convolution without bias from target to source labels.

A target one-hot map ``y_t`` (channel space, channel 0 = don't care) becomes the soft source map
``y_s = M^T y_t`` at every pixel, where ``M`` is the channel-space affinity matrix
``[N_t + 1, N_s + 1]`` (:meth:`catgen.affinity.AffinityMatrix.to_channel_matrix`: ``M[0, 0] = 1``,
don't care -> don't care, ``M[1:, 1:] = A``). As a convolution its weight is
``W[s, t, 0, 0] = M[t, s]``, i.e. ``A^T`` with the don't-care row and column added.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


def channel_matrix(matrix):
    """The channel-space matrix ``float64[N_t + 1, N_s + 1]`` of ``matrix``.

    Args:
        matrix: an :class:`~catgen.affinity.AffinityMatrix` (N_t x N_s over real classes; the
            don't-care row and column are added), or an array ``[N_t + 1, N_s + 1]`` already in
            channel space.
    """
    if hasattr(matrix, 'to_channel_matrix'):
        return matrix.to_channel_matrix(dontcare=True)
    m = np.asarray(matrix.detach().cpu() if torch.is_tensor(matrix) else matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f'AffinityLayer expects a 2-D channel-space matrix [N_t + 1, N_s + 1], '
                         f'got shape {m.shape}')
    return m


@MODELS.register_module()
class AffinityLayer(nn.Module):
    """1x1 convolution without bias, weights ``A^T``: target one-hot -> soft source map.

    Args:
        matrix: an :class:`~catgen.affinity.AffinityMatrix` or a channel-space array
            ``[N_t + 1, N_s + 1]`` (row = target channel, column = source channel).
        learnable: whether the weight trains (``requires_grad``); the weight is a parameter in
            both cases, so checkpoints hold ``<prefix>.weight`` either way.

    Attributes:
        weight: Parameter ``[N_s + 1, N_t + 1, 1, 1]``.
        num_target, num_source: channel counts ``N_t + 1`` and ``N_s + 1`` (don't care included).
    """

    def __init__(self, matrix, learnable=False):
        super().__init__()
        m = channel_matrix(matrix)
        self.num_target, self.num_source = m.shape
        weight = torch.as_tensor(m.T.copy(), dtype=torch.float32)[:, :, None, None]
        self.weight = nn.Parameter(weight, requires_grad=bool(learnable))

    @property
    def matrix(self):
        """The current channel-space matrix as a Tensor ``[N_t + 1, N_s + 1]`` (a view of W^T)."""
        return self.weight[:, :, 0, 0].t()

    def forward(self, seg):
        """seg: Tensor[B, N_t + 1, H, W] -> Tensor[B, N_s + 1, H, W] (``M^T seg`` per pixel)."""
        if seg.dim() != 4 or seg.shape[1] != self.num_target:
            raise ValueError(f'AffinityLayer expects a target label map of shape '
                             f'[B, {self.num_target}, H, W] (N_t + 1 channels, channel 0 = don\'t '
                             f'care), got {tuple(seg.shape)}')
        return F.conv2d(seg, self.weight.to(seg.dtype))

    def extra_repr(self):
        return (f'{self.num_target} target -> {self.num_source} source channels, '
                f'learnable={self.weight.requires_grad}')
