"""DCL's realism classifier and the segmenter-feature LPIPS (diversity without ImageNet
weights)."""
import math
import os.path as osp
import sys

import pytest
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tiny_mmseg import tiny_mmseg  # noqa: E402

from catgen.evaluation.metrics.intra_lpips import intra_lpips  # noqa: E402
from catgen.evaluation.realism_classifier import (RealismClassifier,  # noqa: E402
                                                  train_realism_classifier)
from catgen.evaluation.segmenter_lpips import SegmenterLPIPS  # noqa: E402


def domains(n=40, size=16, seed=0):
    """Two domains a small CNN tells apart: bright reddish noise vs dark bluish noise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(2 * n, 3, size, size, generator=g) * 80
    source = base[:n] + torch.tensor([150., 60, 40]).view(1, 3, 1, 1)
    target = base[n:] + torch.tensor([20., 40, 150]).view(1, 3, 1, 1)
    return source.to(torch.uint8), target.to(torch.uint8)


def test_classifier_separates_the_domains_and_scores_images():
    source, target = domains()
    model, info = train_realism_classifier(source, target, iters=60, batch_size=16, width=8)
    assert info['accuracy'] == 1.0 and info['num_source'] == 40
    p_target, per_image = model.target_probability(target)
    p_source, _ = model.target_probability(source)
    assert per_image.shape == (40,) and p_target > 0.9 and p_source < 0.1
    again, info2 = train_realism_classifier(source, target, iters=60, batch_size=16, width=8)
    assert info2 == info and torch.equal(again.head.weight, model.head.weight)  # seeded
    with pytest.raises(ValueError, match='differ in size'):
        train_realism_classifier(source, target[..., :8, :8])
    assert RealismClassifier(4)(torch.zeros(2, 3, 16, 16)).shape == (2,)


def test_segmenter_lpips_is_the_lpips_form_by_hand(tmp_path):
    cfg, ckpt = tiny_mmseg(tmp_path, 3, bn_spread=0.5)
    dist = SegmenterLPIPS(cfg, ckpt, batch_size=3)
    assert dist.name == 'seg-tiny_mmseg'
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)
    expected = torch.zeros(4)
    for fx, fy in zip(dist.segmenter.feature_maps(x), dist.segmenter.feature_maps(y)):
        nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        expected += (nx - ny).pow(2).sum(1).mean(dim=(1, 2))
    assert torch.allclose(dist.distance(x, y), expected, atol=1e-5)
    assert torch.allclose(dist.distance(x, x), torch.zeros(4), atol=1e-10)
    # it plugs into the intra-cluster protocol: copies of the training images score 0
    train = x[:2]
    copies = torch.cat([train.repeat(3, 1, 1, 1)])
    out = intra_lpips(dist, copies, dist.embed(train), max_per_cluster=50)
    assert out['intra_lpips'] == 0 and math.isfinite(out['intra_lpips'])
    assert out['cluster_sizes'].tolist() == [3, 3]
