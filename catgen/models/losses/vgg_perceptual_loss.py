"""VGG19 perceptual loss of pix2pixHD / SPADE, with weights from a local file."""
import os
import re

import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS

VGG19_FILE = 'vgg19-dcbb9e9d.pth'
VGG19_URL = f'https://download.pytorch.org/models/{VGG19_FILE}'
# torchvision vgg19().features indices that end the five slices: relu1_1, relu2_1, relu3_1,
# relu4_1, relu5_1 (official SPADE VGG19 slices [0, 2), [2, 7), [7, 12), [12, 21), [21, 30)).
SLICE_ENDS = (2, 7, 12, 21, 30)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FEATURE_KEY = re.compile(r'^(?:features\.)?(\d+)\.(weight|bias)$')
# torchvision's VGG19 configuration 'E' up to conv5_1: widths, 'M' = 2x2 max pooling.
_VGG19_TO_CONV5_1 = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M',
                     512)


def build_vgg19_features():
    """The 30 first layers of ``torchvision.models.vgg19().features`` (conv1_1 .. relu5_1), same
    indices (hence state-dict keys), randomly initialised; without the 120M-parameter classifier.
    """
    layers, in_nc = [], 3
    for v in _VGG19_TO_CONV5_1:
        if v == 'M':
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_nc, v, kernel_size=3, padding=1), nn.ReLU()]
            in_nc = v
    return nn.Sequential(*layers)


def load_vgg19_features(weights_path):
    """Build torchvision's VGG19 ``features[:30]`` (up to relu5_1) with weights from a local file.

    Args:
        weights_path: a torchvision VGG19 state dict (``vgg19-dcbb9e9d.pth``: ``features.*`` and
            ``classifier.*`` keys) or one with only the ``features.*`` keys (those past index 29
            and ``classifier.*`` are ignored). Loaded with ``torch.load(weights_only=True)``.

    Returns:
        nn.Sequential of the 30 first layers of ``torchvision.models.vgg19().features``
        (see :func:`build_vgg19_features`).

    Raises:
        FileNotFoundError: ``weights_path`` does not exist (says where to put which file).
        KeyError: the file lacks some of the needed ``features.*`` keys.
    """
    if weights_path is None or not os.path.isfile(weights_path):
        raise FileNotFoundError(
            f'VGG19 weights for the perceptual loss not found at {weights_path!r}. This machine '
            f'cannot download them: copy torchvision\'s {VGG19_FILE} (from {VGG19_URL}) to that '
            f'path, e.g. checkpoints/{VGG19_FILE}, and set weights_path to it, or turn the VGG '
            f'loss off.')
    from catgen.utils.checkpoint import read_state_dict
    state = read_state_dict(weights_path, what='VGG19 weights file')
    features = build_vgg19_features()
    wanted = {}
    for key, value in state.items():
        match = _FEATURE_KEY.match(key)
        if match and int(match.group(1)) < SLICE_ENDS[-1]:
            wanted[f'{match.group(1)}.{match.group(2)}'] = value
    missing = sorted(set(features.state_dict()) - set(wanted))
    if missing:
        raise KeyError(f'{weights_path} is not a torchvision VGG19 state dict: missing '
                       f'{", ".join("features." + k for k in missing)}. Expected the file '
                       f'{VGG19_FILE} from {VGG19_URL}.')
    features.load_state_dict(wanted)
    return features


def _freeze_as_buffers(module):
    """Turn every parameter of ``module`` into a non-persistent buffer: frozen, moved by ``.to()``,
    left out of ``state_dict`` (checkpoints stay small; the weights always come from the file) and
    out of ``parameters()`` (optimizers never see them)."""
    for sub in module.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            delattr(sub, name)
            sub.register_buffer(name, param.detach().requires_grad_(False), persistent=False)


@MODELS.register_module()
class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 relu1_1 .. relu5_1 features of a generated and a real image.

    As the official SPADE ``VGGLoss``: ``sum_i layer_weights[i] * L1(vgg_i(x), vgg_i(y).detach())``,
    times ``weight`` (official ``lambda_vgg`` 10). The VGG is frozen and always in eval mode; its
    weights are stored as non-persistent buffers (not parameters, not in ``state_dict``).

    Args:
        weights_path: local torchvision VGG19 state dict, see :func:`load_vgg19_features`.
        weight: factor of the loss (official 10).
        layer_weights: weights of the five slices (official 1/32, 1/16, 1/8, 1/4, 1).
        normalize_input: map inputs from [-1, 1] to ImageNet-normalised before VGG (catgen's
            default). The official code feeds the [-1, 1] images to VGG as they are: set False
            to reproduce it.
    """

    def __init__(self, weights_path, weight=10.0,
                 layer_weights=(1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0),
                 normalize_input=True):
        super().__init__()
        if len(layer_weights) != len(SLICE_ENDS):
            raise ValueError(f'layer_weights needs {len(SLICE_ENDS)} values (relu1_1 .. relu5_1), '
                             f'got {len(layer_weights)}')
        self.weights_path = weights_path
        self.weight = weight
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.normalize_input = normalize_input
        features = load_vgg19_features(weights_path)
        starts = (0,) + SLICE_ENDS[:-1]
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, SLICE_ENDS))
        _freeze_as_buffers(self.slices)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.slices.eval()

    def train(self, mode=True):
        """Keep the VGG in eval mode whatever the mode of the model that holds the loss."""
        super().train(mode)
        self.slices.eval()
        return self

    def vgg_features(self, x):
        """x: Tensor[B, 3, H, W] in [-1, 1] -> list of the 5 relu features (relu1_1 .. relu5_1)."""
        if self.normalize_input:
            x = ((x + 1) / 2 - self.mean) / self.std
        feats = []
        for block in self.slices:
            x = block(x)
            feats.append(x)
        return feats

    def forward(self, fake, real):
        """Perceptual loss.

        Args:
            fake: Tensor[B, 3, H, W] in [-1, 1] (gradients flow into it).
            real: Tensor[B, 3, H, W] in [-1, 1] (treated as a constant).

        Returns:
            scalar Tensor.
        """
        fake_feats = self.vgg_features(fake)
        with torch.no_grad():
            real_feats = self.vgg_features(real.detach())
        loss = fake.new_zeros(())
        for w, f, r in zip(self.layer_weights, fake_feats, real_feats):
            loss = loss + w * F.l1_loss(f, r)
        return loss * self.weight
