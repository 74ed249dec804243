"""Proxy masks: spherical k-means recovers separated clusters; logits and masks by hand."""
import pytest
import torch
import torch.nn.functional as F

from catgen.models.proxy_masks import (assign_proxy_masks, feature_vectors, fit_kmeans,
                                       proxy_logits)


def test_kmeans_recovers_three_directions():
    g = torch.Generator().manual_seed(0)
    dirs = torch.eye(8)[:3]
    labels = torch.randint(0, 3, (600,), generator=g)
    x = F.normalize(dirs[labels] + 0.1 * torch.randn(600, 8, generator=g), dim=1)
    centres, cos, iters = fit_kmeans(x, 3, iters=30, seed=1)
    assert centres.shape == (3, 8)
    assert torch.allclose(centres.norm(dim=1), torch.ones(3), atol=1e-5)
    match = centres @ dirs.t()  # every centre is one of the directions
    assert (match.max(1)[0] > 0.98).all() and len(set(match.argmax(1).tolist())) == 3
    assign = (x @ centres.t()).argmax(1)
    mapping = match.argmax(1)
    assert (mapping[assign] == labels).float().mean() > 0.99
    assert 0.9 < cos <= 1 and 1 <= iters <= 30
    again, _, _ = fit_kmeans(x, 3, iters=30, seed=1)
    assert torch.equal(centres, again)  # seeded


def test_kmeans_with_duplicates_and_bad_k():
    x = F.normalize(torch.ones(5, 4), dim=1)
    centres, cos, _ = fit_kmeans(x, 2, iters=5)
    assert torch.isfinite(centres).all() and cos == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match='k <= the number'):
        fit_kmeans(x, 6)


def test_logits_and_masks_by_hand():
    feats = torch.tensor([[3.0, 0.0], [1.0, 1.0]]).t().reshape(1, 2, 1, 2)  # pixels (3,0), (1,1)
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    logits = proxy_logits(feats, centres, temperature=0.5)
    s = 2 ** -0.5
    assert torch.allclose(logits[0, :, 0, 0], torch.tensor([2.0, 0.0]))
    assert torch.allclose(logits[0, :, 0, 1], torch.tensor([s, s]) / 0.5)
    feats2 = torch.tensor([[0.1, 2.0]]).t().reshape(1, 2, 1, 1)
    assert assign_proxy_masks(feats2, centres).tolist() == [[[1]]]
    vec = feature_vectors(torch.randn(2, 3, 4, 5))
    assert vec.shape == (40, 3) and torch.allclose(vec.norm(dim=1), torch.ones(40), atol=1e-5)
