"""SemanticMapper: shapes, input checks, and fitting a label map -> proxy mask pair."""
import pytest
import torch
import torch.nn.functional as F

from catgen.models.mappers import SemanticMapper


def test_shapes_and_checks():
    m = SemanticMapper(in_channels=5, num_clusters=7, input_size=32, output_size=8, width=8,
                       num_blocks=2)
    assert m(torch.rand(2, 5, 32, 32)).shape == (2, 7, 8, 8)
    assert m(torch.rand(2, 5, 64, 64)).shape == (2, 7, 8, 8)  # resized to input_size
    with pytest.raises(ValueError, match='5 input channels'):
        m(torch.rand(1, 4, 32, 32))
    with pytest.raises(ValueError, match='power-of-2 multiple'):
        SemanticMapper(5, 7, input_size=32, output_size=12)


def test_fits_a_pair():
    torch.manual_seed(0)
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[:, :12] = 1
    labels[:, 20:, 8:24] = 2
    x = F.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    target = (F.interpolate(labels[:, None].float(), size=(8, 8), mode='nearest')[:, 0]
              .long() + 1) % 3  # the proxy "classes" are a relabelling
    m = SemanticMapper(3, 3, 32, 8, width=8, num_blocks=1)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(m(x), target)
        loss.backward()
        opt.step()
    assert (m(x).argmax(1) == target).float().mean() == 1.0
