"""The LPIPS loader maps torchvision backbone weights correctly and LPIPSModel is LPIPS.

No ImageNet weights are available in tests: every backbone gets seeded random weights, saved in
torchvision's checkpoint layout (``features.<i>.*``)."""
import math

import lpips
import lpips.pretrained_networks as lpips_nets
import pytest
import torch
import torchvision

from catgen.evaluation.lpips_model import (LPIPSModel, build_lpips, default_backbone_path,
                                           resolve_backbone_path)
from catgen.utils.checkpoint import CheckpointMismatchError, UnsafeCheckpointError

BUILDERS = {'alex': 'alexnet', 'vgg': 'vgg16', 'squeeze': 'squeezenet1_1'}


def random_features(net, seed=0):
    """torchvision's ``<builder>().features`` with seeded He-normal weights (classifier on meta)."""
    with torch.device('meta'):
        model = getattr(torchvision.models, BUILDERS[net])()
    features = model.features.to_empty(device='cpu')
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in features.parameters():
            if p.ndim > 1:
                p.normal_(0, math.sqrt(2 / p[0].numel()), generator=g)
            else:
                p.uniform_(-0.1, 0.1, generator=g)
    return features


def save_backbone(path, net='alex', seed=0):
    """A torchvision-layout checkpoint of random ``net`` weights (plus a classifier key)."""
    features = random_features(net, seed)
    state = {f'features.{k}': v for k, v in features.state_dict().items()}
    state['classifier.1.weight'] = torch.zeros(2, 2)  # ignored by the loader
    torch.save(state, path)
    return path, features


def reference_lpips(monkeypatch, net, features):
    """lpips' own LPIPS whose torchvision backbone returns ``features`` (lpips slices it)."""
    class Backbone:
        pass
    backbone = Backbone()
    backbone.features = features
    with monkeypatch.context() as patch:
        patch.setattr(lpips_nets.tv, BUILDERS[net], lambda **kwargs: backbone)
        return lpips.LPIPS(pretrained=True, net=net, verbose=False)


def images(n, size=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize('net', ['alex', 'vgg', 'squeeze'])
def test_loaded_model_equals_lpips_with_the_same_backbone(tmp_path, monkeypatch, net):
    path, features = save_backbone(tmp_path / f'{net}.pth', net)
    model = build_lpips(net, backbone_path=path)
    ref = reference_lpips(monkeypatch, net, features)
    ours, theirs = model.state_dict(), ref.state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x, y = images(3, seed=1), images(3, seed=2)
    with torch.no_grad():
        expected = ref(x, y).flatten()
        assert torch.equal(model(x, y).flatten(), expected)
    # the embedding form gives the same numbers as lpips' forward
    got = LPIPSModel(model=model, device='cpu').distance(x, y)
    assert torch.allclose(got.float(), expected, rtol=1e-5, atol=1e-6)
    assert (expected > 0.01).all()


def test_identity_symmetry_and_pairwise_matrix(tmp_path):
    path, _ = save_backbone(tmp_path / 'alex.pth')
    m = LPIPSModel('alex', backbone_path=path, device='cpu', batch_size=2)
    x, y = images(3, seed=3), images(3, seed=4)
    assert torch.equal(m.distance(x, x), torch.zeros(3, dtype=torch.float64))
    assert torch.allclose(m.distance(x, y), m.distance(y, x), rtol=0, atol=1e-12)
    emb = m.embed(torch.cat([x, y]))  # 6 images in batches of 2
    d = LPIPSModel.pdist(emb)
    assert d.shape == (6, 6) and torch.equal(d, d.T) and torch.equal(d.diagonal(), torch.zeros(6))
    assert (d + torch.eye(6) > 0.01).all()
    cross = LPIPSModel.cdist(emb[:3], emb[3:])
    assert torch.allclose(cross.diagonal(), m.distance(x, y), atol=1e-6)
    with torch.no_grad():
        direct = torch.stack([m.lpips(x[i:i + 1], y[j:j + 1]).flatten()[0]
                              for i in range(3) for j in range(3)]).view(3, 3)
    assert torch.allclose(cross.float(), direct, rtol=1e-5, atol=1e-6)


def test_uint8_images_are_mapped_to_minus_one_one(tmp_path):
    path, _ = save_backbone(tmp_path / 'alex.pth')
    m = LPIPSModel('alex', backbone_path=path, device='cpu')
    img = torch.randint(0, 256, (2, 3, 40, 48), dtype=torch.uint8, generator=torch.Generator()
                        .manual_seed(0))
    as_float = img.float() / 127.5 - 1
    assert torch.allclose(m.embed(img), m.embed(as_float), atol=1e-6)
    assert m.to_input(img).min() >= -1 and m.to_input(img).max() <= 1


def test_resize_brings_images_to_one_size(tmp_path):
    path, _ = save_backbone(tmp_path / 'alex.pth')
    m = LPIPSModel('alex', backbone_path=path, device='cpu', resize=64)
    small = images(2, size=40)
    assert m.to_input(small).shape == (2, 3, 64, 64)
    assert m.embed(small).shape == m.embed(images(2, size=64)).shape
    with pytest.raises(ValueError, match='resize must be'):
        LPIPSModel('alex', backbone_path=path, resize=16)


def test_bad_inputs_are_explained(tmp_path):
    path, _ = save_backbone(tmp_path / 'alex.pth')
    m = LPIPSModel('alex', backbone_path=path, device='cpu')
    with pytest.raises(ValueError, match='at least 32x32.*resize=64'):
        m.embed(images(1, size=16))
    with pytest.raises(ValueError, match=r'in \[-1, 1\]'):
        m.embed(images(1) * 3)
    with pytest.raises(ValueError, match=r'Tensor\[N, 3, H, W\]'):
        m.embed(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match='LPIPS net must be one of'):
        build_lpips('resnet', backbone_path=path)


def test_missing_backbone_names_the_file_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    expected = tmp_path / 'hub' / 'checkpoints' / 'vgg16-397923af.pth'
    assert default_backbone_path('vgg16') == expected
    with pytest.raises(FileNotFoundError) as err:
        build_lpips('vgg')
    assert 'vgg16-397923af.pth' in str(err.value) and str(expected) in str(err.value)
    assert 'backbone_path' in str(err.value)
    with pytest.raises(FileNotFoundError, match='given backbone_path'):
        resolve_backbone_path('alex', tmp_path / 'nowhere.pth')
    # the torchvision cache file is found without a path
    expected = tmp_path / 'hub' / 'checkpoints' / 'alexnet-owt-7be5be79.pth'
    expected.parent.mkdir(parents=True)
    save_backbone(expected, 'alex')
    assert resolve_backbone_path('alex') == expected
    assert isinstance(build_lpips('alex'), lpips.LPIPS)


def test_wrong_or_unsafe_backbone_files_are_refused(tmp_path):
    vgg, _ = save_backbone(tmp_path / 'vgg.pth', 'vgg')
    with pytest.raises(CheckpointMismatchError, match='shape mismatch'):
        build_lpips('alex', backbone_path=vgg)
    torch.save({'conv.weight': torch.zeros(1)}, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match='features.0.weight'):
        build_lpips('alex', backbone_path=tmp_path / 'other.pth')
    torch.save({'features.0.weight': torch.zeros(1), 'x': pytest.raises}, tmp_path / 'bad.pth')
    with pytest.raises(UnsafeCheckpointError):
        build_lpips('alex', backbone_path=tmp_path / 'bad.pth')
