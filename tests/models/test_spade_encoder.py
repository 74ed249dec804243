import pytest
import torch
import torch.nn.functional as F

from catgen.models.generators.spade_encoder import SPADEEncoder
from catgen.models.generators.spade_generator import SPADEGenerator
from catgen.models.losses.kld_loss import KLDLoss
from catgen.registry import MODELS


@pytest.mark.slow
def test_official_parameter_count():
    # official ConvEncoder (ngf 64, crop 256): 6 layers + two Linear(8192, 256)
    with torch.device('meta'):
        e = SPADEEncoder()
    assert sum(p.numel() for p in e.parameters()) == 10_463_424
    assert e.num_layers == 6 and e.fc_mu.in_features == 512 * 16


def test_encoder_shapes_and_vae_generator():
    e = SPADEEncoder(base_channels=2, z_dim=8, input_size=32)
    img = torch.rand(2, 3, 64, 64) * 2 - 1  # resized to 32 inside
    mu, logvar = e(img)
    assert mu.shape == logvar.shape == (2, 8)
    z = e.reparameterize(mu, logvar)
    g = SPADEGenerator(4, base_channels=2, crop_size=32, use_vae=True, z_dim=8, spade_hidden=8)
    seg = F.one_hot(torch.randint(0, 4, (2, 32, 32)), 4).permute(0, 3, 1, 2).float()
    out = g(seg, z)
    (out.mean() + KLDLoss()(mu, logvar)).backward()
    assert e.layer1[0].weight_orig.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='power of two'):
        SPADEEncoder(input_size=48)


def test_kld_values():
    kld = MODELS.build(dict(type='KLDLoss', weight=1.0))
    zeros = torch.zeros(3, 4)
    assert kld(zeros, zeros).item() == 0.0  # N(0, I) against itself
    # mu = 1, logvar = 0: 0.5 * mu^2 per entry, summed over 3 x 4 entries
    assert kld(torch.ones(3, 4), zeros).item() == pytest.approx(6.0)
    assert KLDLoss()(torch.ones(3, 4), zeros).item() == pytest.approx(0.3)  # weight 0.05
