"""AffinityLayer: a bias-free 1x1 conv whose weight is A^T (channel space, don't care kept)."""
import numpy as np
import pytest
import torch

from catgen.affinity import AffinityMatrix
from catgen.models.layers.affinity_layer import AffinityLayer


def matrix():
    values = np.array([[0.7, 0.3, 0.0], [0.0, 0.0, 1.0]])  # 2 target x 3 source classes
    return AffinityMatrix(values, ['meadow', 'rock face'], ['grass', 'flower', 'rock'])


def test_weight_is_channel_space_transpose_and_output_is_At_y():
    mat = matrix()
    layer = AffinityLayer(mat)
    assert layer.weight.shape == (4, 3, 1, 1) and not layer.weight.requires_grad
    m = mat.to_channel_matrix()
    assert np.array_equal(layer.weight[:, :, 0, 0].numpy(), m.T.astype(np.float32))
    label = torch.tensor([[[0, 1], [2, 1]]])  # don't care, meadow / rock face, meadow
    seg = torch.nn.functional.one_hot(label, 3).permute(0, 3, 1, 2).float()
    out = layer(seg)
    assert torch.equal(out, mat.apply_onehot(seg))
    assert out[0, :, 0, 0].tolist() == [1, 0, 0, 0]  # don't care -> don't care
    assert torch.allclose(out[0, :, 0, 1], torch.tensor([0, 0.7, 0.3, 0]))  # meadow
    assert out[0, :, 1, 0].tolist() == [0, 0, 0, 1]  # rock face -> rock


def test_learnable_and_shape_errors():
    layer = AffinityLayer(matrix().to_channel_matrix(), learnable=True)
    assert layer.weight.requires_grad
    assert torch.equal(layer.matrix, torch.as_tensor(matrix().to_channel_matrix()).float())
    out = layer(torch.rand(2, 3, 4, 4))
    out.sum().backward()
    assert layer.weight.grad is not None
    with pytest.raises(ValueError, match=r'\[B, 3, H, W\]'):
        layer(torch.rand(1, 4, 4, 4))
