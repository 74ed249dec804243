"""InceptionV3FeatureExtractor: the standard FID network (pytorch-fid's Inception-v3, pool3).

The architecture is pytorch-fid's ``fid_inception_v3`` (torchvision's Inception-v3 with the
FID-specific ``FIDInceptionA/C/E_1/E_2`` blocks); the weights are the FID Inception weights
``pt_inception-2015-12-05-6726825d.pth``, read from a local file with
``torch.load(weights_only=True)`` (nothing is downloaded). Images go through exactly what
pytorch-fid does: ``/ 255``, bilinear resize to 299 x 299 (``align_corners=False``), ``2x - 1``,
the network up to the final average pool -> 2048 features.

Speed (CPU inference): BatchNorm is folded into the preceding convolutions and the network runs
in ``channels_last`` memory format (~1.4-2x faster than pytorch-fid's feature extraction on one
CPU core, docs/results/fid_speed.json). Both change the features only by float32 rounding (up
to ~1e-5 relative after the ~95 layers; FID within ~1e-4 relative of pytorch-fid's, measured)
and are switched off with ``fuse_bn=False`` / ``channels_last=False`` (then the features equal
pytorch-fid's bit for bit).
"""
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from catgen.registry import MODELS

from catgen.utils.cache import file_sha256

from .base_feature_extractor import STANDARD_NAME, BaseFeatureExtractor

__all__ = ['InceptionV3FeatureExtractor', 'FID_WEIGHTS_FILENAME', 'FID_WEIGHTS_URL',
           'default_inception_weights', 'write_random_inception_weights']

FID_WEIGHTS_FILENAME = 'pt_inception-2015-12-05-6726825d.pth'
FID_WEIGHTS_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
                   + FID_WEIGHTS_FILENAME)
#: torch hub's naming convention: the file name carries the first hex digits of its sha256.
FID_WEIGHTS_SHA256_PREFIX = '6726825d'


def default_inception_weights():
    """Where torch hub (and so pytorch-fid) keeps the FID Inception weights:
    ``torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-6726825d.pth``
    (``$TORCH_HOME/hub/checkpoints/...``, by default ``~/.cache/torch/hub/checkpoints/...``)."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / FID_WEIGHTS_FILENAME


def _fid_inception_v3():
    """pytorch-fid's FID Inception-v3 architecture, random weights (no download)."""
    try:
        from pytorch_fid import inception as pf
    except ImportError as e:
        raise ImportError('InceptionV3FeatureExtractor builds pytorch-fid\'s FID Inception-v3: '
                          'install it with pip install pytorch-fid==0.3.0 (listed in '
                          'requirements/optional.txt).') from e
    net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def _fuse_batchnorm(module):
    """Fold every ``BasicConv2d``'s BatchNorm (eval statistics) into its convolution."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    for m in module.modules():
        if type(m).__name__ == 'BasicConv2d' and isinstance(getattr(m, 'bn', None),
                                                            nn.BatchNorm2d):
            m.conv = fuse_conv_bn_eval(m.conv, m.bn)
            m.bn = nn.Identity()


@MODELS.register_module()
class InceptionV3FeatureExtractor(BaseFeatureExtractor):
    """pytorch-fid's Inception-v3 pool3 features (2048-d): the standard FID / KID network.

    ``name`` is ``'inception'`` (metric keys ``fid`` / ``kid``) only when the weights file is the
    official one, recognised by its sha256 starting with ``6726825d`` (torch hub's file naming
    convention). Any other file (e.g. random weights in tests and benchmarks) still works, with
    a warning, under the name ``'inception-<first 8 hex digits of its sha256>'``, so its numbers
    are reported as ``fid_inception-xxxxxxxx`` and never mistaken for the standard FID.

    Args:
        weights: path of the ``.pth`` state dict; None looks for the file torch hub (and
            pytorch-fid) use: ``torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-
            6726825d.pth`` (``$TORCH_HOME/hub/checkpoints/``). A missing file raises
            FileNotFoundError naming the file, where to put it and where to get it.
        fuse_bn: fold BatchNorm into the convolutions (faster; features equal to rounding).
        channels_last: run in channels_last memory format (faster on CPU and GPU).
        device: where the network goes ('cpu', 'cuda', 'cuda:0').

    Input ``uint8 Tensor[B, 3, H, W]`` (RGB, any H, W) -> ``float32 Tensor[B, 2048]``.
    """

    def __init__(self, weights=None, fuse_bn=True, channels_last=True, device='cpu'):
        super().__init__()
        path = Path(weights).expanduser() if weights is not None else default_inception_weights()
        if not path.is_file():
            where = ('the path you passed as weights' if weights is not None else
                     'torch hub\'s cache (torch.hub.get_dir()/checkpoints, i.e. '
                     '$TORCH_HOME/hub/checkpoints/)')
            raise FileNotFoundError(
                f'FID Inception weights not found: {path} ({where}). Nothing is downloaded by '
                f'catgen: on a machine with network access get {FID_WEIGHTS_URL} and put the '
                f'file at {path}, or pass its path as feature_extractor=dict(type='
                f'"InceptionV3FeatureExtractor", weights="/path/to/{FID_WEIGHTS_FILENAME}").')
        self.weights = str(path)
        self.weights_sha256 = file_sha256(path)
        if self.weights_sha256.startswith(FID_WEIGHTS_SHA256_PREFIX):
            self.name = STANDARD_NAME
        else:
            self.name = f'{STANDARD_NAME}-{self.weights_sha256[:8]}'
            warnings.warn(
                f'{path} is not the official FID Inception file (its sha256 starts with '
                f'{self.weights_sha256[:8]}, not {FID_WEIGHTS_SHA256_PREFIX}): its metrics are '
                f'reported as fid_{self.name} / kid_{self.name}, not as the standard fid / kid.')
        from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict
        # torch.load(weights_only=True); a bare state dict or one under 'state_dict'
        state_dict = read_state_dict(path, strip_prefixes=(), what='FID Inception weights')
        net = _fid_inception_v3()
        load_state_dict_checked(net, state_dict, strict=True, source=str(path))
        # pytorch-fid's InceptionV3 blocks 0..3, up to the final average pool
        self.blocks = nn.Sequential(
            net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),
            net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2),
            net.Mixed_5b, net.Mixed_5c, net.Mixed_5d, net.Mixed_6a,
            net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e,
            net.Mixed_7a, net.Mixed_7b, net.Mixed_7c, nn.AdaptiveAvgPool2d(output_size=(1, 1)))
        self.eval()
        self.requires_grad_(False)
        self.fuse_bn = bool(fuse_bn)
        if self.fuse_bn:
            _fuse_batchnorm(self.blocks)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.blocks.to(memory_format=torch.channels_last)
        self.feature_dim = 2048
        self.to(device)

    def features(self, img):
        """img: ``uint8 Tensor[B, 3, H, W]`` -> ``float32 Tensor[B, 2048]`` (pytorch-fid's
        preprocessing: ToTensor's ``/ 255``, bilinear 299 x 299, ``2x - 1``)."""
        x = img.float().div(255)
        x = F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
        x = 2 * x - 1
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.blocks(x).flatten(1)

    def cache_key(self):
        # fuse_bn / channels_last only change float rounding: not part of the key
        return {'class': type(self).__name__, 'name': self.name,
                'weights_sha256': self.weights_sha256, 'input': 'bilinear-299',
                'feature': 'pool3-2048'}


def write_random_inception_weights(path, seed=0, calibration_images=8):
    """Write a seeded random state dict of the FID Inception-v3 to ``path`` (for tests and
    benchmarks without the real file; nothing about it is meaningful except its shapes).

    PyTorch's default initialisation; then the BatchNorm running statistics are set to the
    statistics of the activations of ``calibration_images`` random images (half noise, half
    smooth; at 160 x 160, cheaper than 299 and close enough for statistics), so that each layer
    is normalised and the pool3 features depend on the input as a trained network's do (with
    default statistics the signal dies out over the ~95 layers and every image gets the same
    features); BatchNorm's affine parameters are drawn at random around 1 and 0. Written
    atomically.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from catgen.utils.io import atomic_write
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = _fid_inception_v3()
    half = max(1, calibration_images // 2)
    noise = torch.rand(half, 3, 160, 160, generator=gen) * 2 - 1
    smooth = F.interpolate(torch.rand(half, 3, 8, 8, generator=gen) * 2 - 1, size=(160, 160),
                           mode='bilinear', align_corners=False)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batch
    trunk = nn.Sequential(
        net.Conv2d_1a_3x3, net.Conv2d_2a_3x3, net.Conv2d_2b_3x3, nn.MaxPool2d(3, 2),
        net.Conv2d_3b_1x1, net.Conv2d_4a_3x3, nn.MaxPool2d(3, 2), net.Mixed_5b, net.Mixed_5c,
        net.Mixed_5d, net.Mixed_6a, net.Mixed_6b, net.Mixed_6c, net.Mixed_6d, net.Mixed_6e,
        net.Mixed_7a, net.Mixed_7b, net.Mixed_7c)
    trunk.train()
    with torch.no_grad():
        trunk(torch.cat([noise, smooth]))
    for m in bns:
        m.momentum = 0.1
        n = m.num_features
        m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
        m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    path = Path(path)
    with atomic_write(path) as tmp:
        torch.save(net.state_dict(), tmp)
    return path
