"""A tiny, fast feature extractor for metric / cache / loop tests (registered as
``TinyFeatureExtractor`` in catgen's MODELS, force=True so that re-imports are harmless)."""
import torch
from torch import nn

from catgen.evaluation.feature_extractors import BaseFeatureExtractor
from catgen.registry import MODELS


@MODELS.register_module(force=True)
class TinyFeatureExtractor(BaseFeatureExtractor):
    """A seeded random 3->8 conv (stride 4), ReLU, global mean and max pool: 16 features.

    Counts what it sees: ``images`` (total images featurised), ``calls`` (forward calls).
    """

    def __init__(self, name='tiny', seed=0):
        super().__init__()
        self.name = name
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, 4, stride=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=gen) * 0.1)
            self.conv.bias.copy_(torch.randn(8, generator=gen) * 0.1)
        self.requires_grad_(False)
        self.eval()
        self.feature_dim = 16
        self.images = 0
        self.calls = 0

    def features(self, img):
        self.images += img.shape[0]
        self.calls += 1
        x = torch.relu(self.conv(img.float() / 127.5 - 1))
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)

    def cache_key(self):
        return {'class': 'TinyFeatureExtractor', 'name': self.name, 'seed': self.seed}
