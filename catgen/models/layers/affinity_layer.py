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


def uniform_channel_matrix(num_target, num_source):
    """``float64[num_target, num_source]``: don't care -> don't care, every other target
    channel uniform over the source channels 1..num_source-1 (an uninformed affinity)."""
    m = np.zeros((num_target, num_source))
    m[0, 0] = 1.0
    m[1:, 1:] = 1.0 / (num_source - 1)
    return m


@MODELS.register_module()
class AffinityLayer(nn.Module):
    """1x1 convolution without bias, weights ``A^T``: target one-hot -> soft source map.

    Args:
        matrix: an :class:`~catgen.affinity.AffinityMatrix` or a channel-space array
            ``[N_t + 1, N_s + 1]`` (row = target channel, column = source channel); None builds
            the layer from ``num_target``/``num_source`` with the uninformed matrix (don't care
            -> don't care, every target class uniform over the source classes), to be set by
            :meth:`set_matrix` (CAT) or loaded from a checkpoint.
        learnable: whether the weight trains (``requires_grad``); the weight is a parameter in
            both cases, so checkpoints hold ``<prefix>.weight`` either way.
        num_target: ``N_t + 1`` when ``matrix`` is None.
        num_source: ``N_s + 1`` when ``matrix`` is None.

    Attributes:
        weight: Parameter ``[N_s + 1, N_t + 1, 1, 1]``.
        num_target, num_source: channel counts ``N_t + 1`` and ``N_s + 1`` (don't care included).
    """

    def __init__(self, matrix=None, learnable=False, num_target=None, num_source=None):
        super().__init__()
        if matrix is None:
            if not num_target or not num_source or num_target < 2 or num_source < 2:
                raise ValueError(f'AffinityLayer needs a matrix, or num_target and num_source '
                                 f'(channel counts >= 2, don\'t care included); got '
                                 f'num_target={num_target!r}, num_source={num_source!r}')
            matrix = uniform_channel_matrix(num_target, num_source)
        m = channel_matrix(matrix)
        self.num_target, self.num_source = m.shape
        weight = torch.as_tensor(m.T.copy(), dtype=torch.float32)[:, :, None, None]
        self.weight = nn.Parameter(weight, requires_grad=bool(learnable))

    @torch.no_grad()
    def set_matrix(self, matrix):
        """Overwrite the weight with ``matrix`` (an AffinityMatrix or a channel-space array of
        this layer's shape)."""
        m = channel_matrix(matrix)
        if m.shape != (self.num_target, self.num_source):
            raise ValueError(f'the affinity matrix is {m.shape[0]} x {m.shape[1]} in channel '
                             f'space, this layer maps {self.num_target} -> {self.num_source} '
                             'channels (don\'t care included)')
        self.weight.copy_(torch.as_tensor(m.T.copy(), dtype=self.weight.dtype)[:, :, None, None])

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
