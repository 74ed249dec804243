import pytest
import torch
import torch.nn.functional as F

from catgen.models.losses.vgg_perceptual_loss import (VGGPerceptualLoss, build_vgg19_features,
                                                      load_vgg19_features)
from catgen.registry import MODELS


@pytest.fixture(scope='module')
def features_state():
    """A random VGG19 ``features.*`` state dict up to relu5_1 (torchvision key names)."""
    torch.manual_seed(0)
    return {f'features.{k}': v for k, v in build_vgg19_features().state_dict().items()}


@pytest.fixture(scope='module')
def vgg_file(tmp_path_factory, features_state):
    path = tmp_path_factory.mktemp('vgg') / 'vgg19_features.pth'
    torch.save(features_state, path)
    return str(path)


@pytest.fixture(scope='module')
def loss(vgg_file):
    return VGGPerceptualLoss(vgg_file)


def images(seed, b=1, size=32):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_missing_file_message(tmp_path):
    missing = tmp_path / 'checkpoints' / 'vgg19-dcbb9e9d.pth'
    with pytest.raises(FileNotFoundError) as err:
        VGGPerceptualLoss(str(missing))
    msg = str(err.value)
    assert str(missing) in msg
    assert 'checkpoints/vgg19-dcbb9e9d.pth' in msg
    assert 'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth' in msg


def test_weights_come_from_the_file(loss, features_state):
    assert torch.equal(loss.slices[0][0].weight, features_state['features.0.weight'])
    assert torch.equal(loss.slices[4][-2].weight, features_state['features.28.weight'])


def test_zero_for_identical_images_positive_otherwise(loss):
    x = images(1)
    assert loss(x, x.clone()).item() == 0.0
    assert loss(x, images(2)).item() > 0


def test_value_is_the_weighted_sum_of_slice_l1(loss):
    x, y = images(3), images(4)
    fx, fy = loss.vgg_features(x), loss.vgg_features(y)
    assert [f.shape[1] for f in fx] == [64, 128, 256, 512, 512]
    assert [f.shape[-1] for f in fx] == [32, 16, 8, 4, 2]
    expected = sum(w * F.l1_loss(a, b) for w, a, b in
                   zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), fx, fy))
    assert loss(x, y).item() == pytest.approx(10.0 * expected.item(), rel=1e-5)


def test_imagenet_normalisation(loss, vgg_file):
    raw = VGGPerceptualLoss(vgg_file, normalize_input=False)
    x = images(5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = raw.vgg_features(((x + 1) / 2 - mean) / std)[0]
    assert torch.allclose(loss.vgg_features(x)[0], expected, atol=1e-5)


def test_frozen_gradients_flow_to_fake_only(loss):
    fake = images(6).requires_grad_(True)
    real = images(7).requires_grad_(True)
    loss(fake, real).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert real.grad is None
    assert list(loss.parameters()) == []  # frozen: nothing for an optimizer
    assert all(not b.requires_grad for b in loss.buffers())
    assert loss.state_dict() == {}  # checkpoints do not carry VGG
    loss.train()
    assert not loss.slices.training


def test_full_torchvision_layout_is_accepted(tmp_path, features_state):
    full = dict(features_state)
    full['features.30.weight'] = torch.zeros(1)  # past relu5_1: ignored
    full['classifier.0.weight'] = torch.zeros(2, 2)  # classifier: ignored
    path = tmp_path / 'vgg19-dcbb9e9d.pth'
    torch.save(full, path)
    feats = load_vgg19_features(str(path))
    assert len(feats) == 30
    assert torch.equal(feats[28].weight, features_state['features.28.weight'])
    del full['features.28.bias']
    torch.save(full, path)
    with pytest.raises(KeyError, match='features.28.bias'):
        load_vgg19_features(str(path))


def test_registry(vgg_file):
    loss = MODELS.build(dict(type='VGGPerceptualLoss', weights_path=vgg_file, weight=1.0))
    assert isinstance(loss, VGGPerceptualLoss) and loss.weight == 1.0
