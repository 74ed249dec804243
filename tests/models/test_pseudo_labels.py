"""Fewshot-SMIS pseudo labels against hand computations."""
import torch
import torch.nn.functional as F

from catgen.models.pseudo_labels import (class_prototypes, dense_pseudo_labels,
                                         sparse_pseudo_labels, support_features)


def test_prototypes_average_per_image_then_over_images():
    # 2 images, 2x2 features of dim 2, 3 classes (class 2 absent)
    feats = torch.tensor([[[[1., 1.], [0., 0.]], [[0., 0.], [1., 3.]]],
                          [[[2., 0.], [0., 0.]], [[0., 0.], [0., 1.]]]])
    labels = torch.tensor([[[0, 0], [1, 1]], [[0, 255], [1, 1]]])
    protos, present = class_prototypes(feats, labels, 3)
    assert present.tolist() == [True, True, False]
    # class 0: image 1 mean (1, 0), image 2 mean (2, 0): average (1.5, 0) -> (1, 0)
    assert torch.allclose(protos[0], torch.tensor([1., 0.]))
    # class 1: image 1 mean (0, 2), image 2 mean (0, 0.5): average (0, 1.25) -> (0, 1)
    assert torch.allclose(protos[1], torch.tensor([0., 1.]))
    assert torch.equal(protos[2], torch.zeros(2))


def test_prototypes_downsample_labels_nearest():
    feats = torch.randn(1, 4, 2, 2)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 2:, :] = 1
    protos, present = class_prototypes(feats, labels, 2)
    expected = F.normalize(feats[0, :, 0, :].mean(1), dim=0)
    assert torch.allclose(protos[0], expected, atol=1e-6)


def test_dense_labels_take_highest_cosine_and_skip_absent_classes():
    protos = torch.tensor([[1., 0.], [0., 1.], [0.7071, 0.7071]])
    feats = torch.tensor([[[[3., 0.1, 1.]], [[0.2, 2., 1.1]]]])  # [1, 2, 1, 3]
    assert dense_pseudo_labels(feats, protos).tolist() == [[[0, 1, 2]]]
    present = torch.tensor([True, True, False])
    assert dense_pseudo_labels(feats, protos, present).tolist() == [[[0, 1, 1]]]
    up = dense_pseudo_labels(feats, protos, size=(2, 6))
    assert up.shape == (1, 2, 6) and up[0, 1].tolist() == [0, 0, 1, 1, 2, 2]


def test_sparse_claims_top_k_above_threshold_highest_wins():
    # 1 sample, 4 pixels (1x4); features are unit vectors at angles
    angles = torch.tensor([0.0, 0.3, 1.2, 3.0])
    feats = torch.stack([angles.cos(), angles.sin()])[None, :, None, :]  # [1, 2, 1, 4]
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([3, 5])
    out = sparse_pseudo_labels(feats, support, labels, top_k=2, threshold=0.5)
    # support 0 (angle 0): cosines 1, .955, .362, -.99 -> claims pixels 0, 1
    # support 1 (angle pi/2): cosines 0, .296, .932, .141 -> top-2: pixels 2 (.93) and 1 (.30 <
    # threshold: no claim)
    assert out.tolist() == [[[3, 3, 5, 255]]]
    # top_k 3: support 1 also claims pixel 1 but with .30 < .5; pixel 1 stays 3
    out = sparse_pseudo_labels(feats, support, labels, top_k=3, threshold=0.2)
    assert out.tolist() == [[[3, 3, 5, 255]]]  # pixel 1: .955 (class 3) beats .296 (class 5)
    out = sparse_pseudo_labels(feats, support, labels, top_k=1, threshold=0.5, chunk=1)
    assert out.tolist() == [[[3, 255, 5, 255]]]


def test_support_features_keep_labelled_pixels():
    feats = torch.randn(2, 3, 2, 2)
    labels = torch.full((2, 2, 2), 255)
    labels[0, 0, 1] = 4
    labels[1, 1, 0] = 2
    s, lab = support_features(feats, labels)
    assert lab.tolist() == [4, 2]
    assert torch.allclose(s[0], F.normalize(feats[0, :, 0, 1], dim=0))
    assert torch.allclose(s[1], F.normalize(feats[1, :, 1, 0], dim=0))
