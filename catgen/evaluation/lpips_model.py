"""LPIPS (Zhang et al. 2018) built from local files only, and LPIPS as an embedding distance.

Weights
-------
An LPIPS network has two parts:

- the linear calibration layers (``lin0..lin4``): shipped inside the ``lpips`` package
  (``lpips/weights/v0.1/{alex,vgg,squeeze}.pth``), nothing to do;
- the ImageNet backbone: torchvision's ``features`` weights, which ``lpips`` would download. catgen
  never downloads: :func:`build_lpips` builds ``lpips.LPIPS(pretrained=True, net=net,
  pnet_rand=True)`` and loads the backbone from a local torchvision checkpoint, either the file
  given as ``backbone_path`` or the file torchvision itself caches,
  ``torch.hub.get_dir()/checkpoints/<name>`` (``~/.cache/torch/hub/checkpoints`` unless
  ``TORCH_HOME`` is set):

  ========  ===========================  ===================
  ``net``   file                         torchvision builder
  ========  ===========================  ===================
  alex      alexnet-owt-7be5be79.pth     ``alexnet``
  vgg       vgg16-397923af.pth           ``vgg16``
  squeeze   squeezenet1_1-b8a52dc0.pth   ``squeezenet1_1``
  ========  ===========================  ===================

  On a machine with network, ``torchvision.models.<builder>(weights='IMAGENET1K_V1')`` downloads
  the file into its cache; copy it to the same place here (or anywhere, and pass its path).
  The file is read with ``torch.load(weights_only=True)`` (:func:`catgen.utils.checkpoint.
  safe_load`); its ``features.<i>.*`` tensors go into LPIPS's ``net.slice<k>.<i>.*`` (the slices
  keep torchvision's layer indices); ``classifier.*`` is ignored.

LPIPS as a distance between embeddings
--------------------------------------
In eval mode (dropout off, no spatial output) LPIPS is

    d(x, y) = sum_l mean_hw sum_c w_lc (f_lchw(x) - f_lchw(y))^2,

with ``f_l`` the channel-normalised backbone features of layer ``l`` and ``w_l >= 0`` the linear
layer's weights. So ``d(x, y) = ||e(x) - e(y)||^2`` with the embedding
``e(x) = concat_l(sqrt(w_l) * f_l(x) / sqrt(H_l W_l))``. :class:`LPIPSModel` computes ``e`` once
per image and all pairwise distances by one matrix product (float64), which is what makes
nearest-neighbour search and all-pairs averages cheap on a CPU. It equals ``lpips.LPIPS.forward``
to float32 rounding (tested).

Image size
----------
LPIPS is fully convolutional and spatially averaged, so it works at any size where every layer
still has at least one pixel: ``min(H, W) >= 32`` is required (AlexNet's pools leave 1x1 at 32;
at 64x64 its five layers are 15, 7, 3, 3, 3 pixels wide, VGG16's 64, 32, 16, 8, 4). Images are
used at their own size unless ``resize`` is given (bilinear, antialiased, on the [-1, 1] floats).
LPIPS values at 64x64 are not comparable with values computed at 256x256.
"""
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['BACKBONES', 'MIN_SIZE', 'default_backbone_path', 'resolve_backbone_path',
           'build_lpips', 'LPIPSModel']

#: ``net`` -> (torchvision builder name, file name torchvision caches the ImageNet weights as).
BACKBONES = {
    'alex': ('alexnet', 'alexnet-owt-7be5be79.pth'),
    'vgg': ('vgg16', 'vgg16-397923af.pth'),
    'squeeze': ('squeezenet1_1', 'squeezenet1_1-b8a52dc0.pth'),
}
_ALIASES = {'alexnet': 'alex', 'vgg16': 'vgg', 'squeezenet': 'squeeze',
            'squeezenet1_1': 'squeeze'}

#: smallest image side every backbone handles.
MIN_SIZE = 32


def _net_name(net):
    name = _ALIASES.get(net, net)
    if name not in BACKBONES:
        raise ValueError(f"LPIPS net must be one of {sorted(BACKBONES)} (or 'alexnet', "
                         f"'vgg16'), got {net!r}.")
    return name


def default_backbone_path(net):
    """``torch.hub.get_dir()/checkpoints/<file>``: where torchvision caches ``net``'s weights."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / BACKBONES[_net_name(net)][1]


def resolve_backbone_path(net, backbone_path=None):
    """The local backbone file for ``net``: ``backbone_path`` or :func:`default_backbone_path`.

    Raises:
        FileNotFoundError: no such file; the message names the file, where to put it and how to
            get it.
    """
    name = _net_name(net)
    builder, filename = BACKBONES[name]
    path = Path(backbone_path) if backbone_path is not None else default_backbone_path(name)
    if path.is_file():
        return path
    where = (f'the given backbone_path {path}' if backbone_path is not None
             else f'{path} (torchvision\'s cache, torch.hub.get_dir()/checkpoints)')
    raise FileNotFoundError(
        f"LPIPS(net='{name}') needs the ImageNet weights of torchvision's {builder} as a local "
        f'file and found none at {where}. catgen does not download. What to do: copy '
        f'{filename} to {default_backbone_path(name)} (on a machine with network, '
        f"torchvision.models.{builder}(weights='IMAGENET1K_V1') saves it into "
        f'~/.cache/torch/hub/checkpoints; set TORCH_HOME to use another cache folder), or pass '
        f'its path as backbone_path=... in the metric config.')


def _unwrap(state, path):
    """The state dict of a loaded torchvision checkpoint (``state_dict`` unwrapped, DDP
    ``module.`` stripped; :func:`catgen.utils.checkpoint.read_state_dict`)."""
    from catgen.utils.checkpoint import read_state_dict
    if not isinstance(state, dict):
        raise ValueError(f'{path} holds a {type(state).__name__}, not a state dict of '
                         f'tensors (a torchvision checkpoint).')
    return read_state_dict(state, wrappers=('state_dict',), what=f'torchvision checkpoint {path}')


def _backbone_state(net_module, state, path, name):
    """Map torchvision's ``features.<i>.<p>`` onto lpips' ``slice<k>.<i>.<p>`` keys."""
    from catgen.utils.checkpoint import load_state_dict_checked
    if not any(k.startswith('features.') for k in state):
        found = ', '.join(list(state)[:5]) or 'nothing'
        raise ValueError(
            f"{path} does not look like torchvision's {BACKBONES[name][0]} checkpoint: expected "
            f'keys such as features.0.weight, found {found}. Pass the file torchvision writes '
            f'({BACKBONES[name][1]}).')
    mapped = {}
    for key in net_module.state_dict():
        _, index, rest = key.split('.', 2)  # 'slice2.3.weight' -> '3', 'weight'
        source = f'features.{index}.{rest}'
        if source in state:
            mapped[key] = state[source]
    load_state_dict_checked(net_module, mapped, strict=True, source=str(path))


def build_lpips(net='alex', backbone_path=None, version='0.1'):
    """An ``lpips.LPIPS`` in eval mode on the CPU, every weight read from a local file.

    The module is built on the meta device (torchvision's random initialisation of the unused
    classifier would take seconds for VGG16), then every tensor is filled: the backbone from the
    torchvision checkpoint, the linear layers from the ``lpips`` package, the scaling layer's
    constants from a fresh ``lpips.ScalingLayer``; a strict load checks that nothing is left out.

    Args:
        net: ``'alex'``, ``'vgg'`` (``'vgg16'``) or ``'squeeze'``.
        backbone_path: torchvision checkpoint of the backbone; ``None`` uses
            :func:`default_backbone_path`.
        version: LPIPS linear-layer version, ``'0.1'`` (the package's default) or ``'0.0'``.

    Returns:
        ``lpips.LPIPS`` with ``requires_grad=False`` everywhere.

    Raises:
        FileNotFoundError: missing backbone file (see :func:`resolve_backbone_path`).
        ValueError / CheckpointMismatchError: the file is not that backbone's checkpoint.
    """
    import lpips

    from catgen.utils.checkpoint import safe_load
    name = _net_name(net)
    path = resolve_backbone_path(name, backbone_path)
    state = _unwrap(safe_load(path, map_location='cpu'), path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torchvision's "pretrained is deprecated"
        with torch.device('meta'):
            model = lpips.LPIPS(pretrained=True, net=name, version=version, pnet_rand=True,
                                verbose=False)
    model.to_empty(device='cpu')
    _backbone_state(model.net, state, path, name)
    lin_file = Path(os.path.dirname(lpips.__file__)) / 'weights' / f'v{version}' / f'{name}.pth'
    if not lin_file.is_file():
        raise FileNotFoundError(f'The lpips package has no linear-layer weights {lin_file} '
                                f"(version {version!r}); use version='0.1'.")
    lins = torch.load(lin_file, map_location='cpu', weights_only=True)
    full = {f'net.{k}': v for k, v in model.net.state_dict().items()}
    full.update({f'scaling_layer.{k}': v for k, v in lpips.ScalingLayer().state_dict().items()})
    for key in model.state_dict():
        if key.startswith('lin'):
            source = key if key in lins else 'lin' + key[len('lins.'):]  # lins.2.* -> lin2.*
            if source not in lins:
                raise ValueError(f'{lin_file} has no {source}; reinstall the lpips package.')
            full[key] = lins[source]
    model.load_state_dict(full, strict=True)
    model.eval()
    model.requires_grad_(False)
    return model


class LPIPSModel:
    """LPIPS as the squared distance between per-image embeddings (see the module doc).

    Args:
        net: backbone, ``'alex'``, ``'vgg'`` or ``'squeeze'``.
        backbone_path: local torchvision checkpoint of the backbone (``None``: torchvision's
            cache file, see :func:`default_backbone_path`).
        version: LPIPS version, ``'0.1'``.
        device: where the backbone runs; ``None``: ``'cuda'`` when available, else ``'cpu'``.
        batch_size: images per backbone forward.
        resize: ``None`` (images at their own size), an int or ``(h, w)``: resize every image to
            that size first (bilinear, antialiased).
        model: an already built ``lpips.LPIPS`` to use instead of building one (then ``net``,
            ``backbone_path`` and ``version`` are ignored).

    Images are ``uint8 Tensor[N, 3, H, W]`` (0..255) or float ``Tensor[N, 3, H, W]`` in
    ``[-1, 1]``, RGB; numpy arrays are accepted too.
    """

    def __init__(self, net='alex', backbone_path=None, version='0.1', device=None,
                 batch_size=16, resize=None, model=None):
        if model is None:
            model = build_lpips(net, backbone_path, version)
        if not getattr(model, 'lpips', True) or getattr(model, 'spatial', False):
            raise ValueError('LPIPSModel needs an lpips.LPIPS with lpips=True, spatial=False.')
        if device is None:
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        self.device = torch.device(device)
        self.lpips = model.to(self.device).eval()
        self.batch_size = batch_size
        self.resize = _size_pair(resize)
        weights = []
        for lin in self.lpips.lins:
            conv = [m for m in lin.model if isinstance(m, torch.nn.Conv2d)][-1]
            w = conv.weight.detach().reshape(1, -1, 1, 1)
            if (w < 0).any():
                raise ValueError('LPIPS linear weights must be >= 0 (the released ones are); '
                                 'the embedding form needs sqrt(w).')
            weights.append(w.sqrt())
        self._sqrt_w = weights

    # ------------------------------------------------------------------ inputs
    def to_input(self, imgs):
        """``float32 Tensor[N, 3, H', W']`` in ``[-1, 1]`` on ``self.device`` (resized if asked).

        Raises ValueError for another shape, dtype or range, or a side below ``MIN_SIZE``.
        """
        if isinstance(imgs, np.ndarray):
            imgs = torch.from_numpy(np.ascontiguousarray(imgs))
        if not torch.is_tensor(imgs) or imgs.ndim != 4 or imgs.shape[1] != 3:
            shape = tuple(imgs.shape) if hasattr(imgs, 'shape') else type(imgs).__name__
            raise ValueError(f'LPIPS expects images as Tensor[N, 3, H, W] (RGB), got {shape}.')
        if imgs.dtype == torch.uint8:
            x = imgs.to(self.device, torch.float32) / 127.5 - 1
        elif imgs.is_floating_point():
            x = imgs.to(self.device, torch.float32)
            if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
                raise ValueError(f'LPIPS expects float images in [-1, 1], got values in '
                                 f'[{x.min().item():.3g}, {x.max().item():.3g}]; pass uint8 '
                                 f'0..255 images or scale them to [-1, 1].')
        else:
            raise ValueError(f'LPIPS expects uint8 (0..255) or float ([-1, 1]) images, got '
                             f'{imgs.dtype}.')
        if self.resize is not None and tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode='bilinear', align_corners=False,
                              antialias=True).clamp_(-1, 1)
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(f'LPIPS needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got '
                             f'{tuple(x.shape[-2:])}; set resize=64 (or larger) in the metric.')
        return x

    # --------------------------------------------------------------- embedding
    @torch.no_grad()
    def _embed_batch(self, x):
        model = self.lpips
        if model.version == '0.1':
            x = model.scaling_layer(x)
        parts = []
        for feat, sqrt_w in zip(model.net(x), self._sqrt_w):
            feat = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)  # lpips'
            parts.append((feat * sqrt_w).flatten(1) / math.sqrt(feat.shape[2] * feat.shape[3]))
        return torch.cat(parts, dim=1)

    def embed(self, imgs, progress=None):
        """``float32 Tensor[N, D]`` on the CPU: LPIPS embeddings of ``imgs``, in batches.

        Args:
            imgs: ``Tensor[N, 3, H, W]`` uint8 or float in ``[-1, 1]``.
            progress: an object with ``update(num_tasks)`` (e.g. ``mmengine.utils.ProgressBar``
                over images), called once per batch, or None.
        """
        out = []
        for start in range(0, len(imgs), self.batch_size):
            chunk = imgs[start:start + self.batch_size]
            out.append(self._embed_batch(self.to_input(chunk)).cpu())
            if progress is not None:
                progress.update(len(chunk))
        if not out:
            raise ValueError('LPIPSModel.embed got no images.')
        return torch.cat(out)

    # --------------------------------------------------------------- distances
    @staticmethod
    def cdist(emb_a, emb_b, chunk=256):
        """``float64 Tensor[Na, Nb]``: LPIPS between every row of ``emb_a`` and of ``emb_b``.

        ``|a|^2 + |b|^2 - 2 a.b`` in float64 (one matrix product); entries below 1e-9, where
        that form's rounding (~1e-16) would matter, are recomputed as ``|a - b|^2``, so equal
        embeddings give exactly 0.
        """
        b = emb_b.double()
        b_sq = torch.linalg.vector_norm(b, dim=1).square()
        rows = []
        for start in range(0, len(emb_a), chunk):
            a = emb_a[start:start + chunk].double()
            a_sq = torch.linalg.vector_norm(a, dim=1).square()
            rows.append(_fix_small(torch.addmm(a_sq[:, None] + b_sq[None, :], a, b.T,
                                               alpha=-2), a, b))
        return torch.cat(rows)

    @staticmethod
    def pdist(emb):
        """``float64 Tensor[N, N]``: symmetric LPIPS among the rows of ``emb``, zero diagonal
        (as :meth:`cdist`, with one product)."""
        x = emb.double()
        sq = torch.linalg.vector_norm(x, dim=1).square()
        d = torch.addmm(sq[:, None] + sq[None, :], x, x.T, alpha=-2)
        d = (d + d.T) / 2
        d.fill_diagonal_(1)  # not "small": the diagonal is set to 0 below
        d = _fix_small(d, x, x)
        d.fill_diagonal_(0)
        return d

    def distance(self, x, y):
        """``float64 Tensor[N]``: LPIPS between ``x[i]`` and ``y[i]`` (same sizes)."""
        ex, ey = self.embed(x), self.embed(y)
        if ex.shape != ey.shape:
            raise ValueError(f'LPIPS compares images of one size: got {tuple(x.shape)} and '
                             f'{tuple(y.shape)}.')
        return (ex.double() - ey.double()).pow(2).sum(1)


class LazyLPIPSMixin:
    """For metrics: ``self.model``, the :class:`LPIPSModel` built on first use from the
    metric's ``net``, ``backbone_path``, ``device``, ``batch_size`` and ``resize`` attributes
    (the backbone file is resolved, i.e. checked, at construction; the model costs time only
    when the metric first runs)."""

    _model = None

    @property
    def model(self):
        """The :class:`LPIPSModel`, built on first use."""
        if self._model is None:
            self._model = LPIPSModel(self.net, self.backbone_path, device=self.device,
                                     batch_size=self.batch_size, resize=self.resize)
        return self._model


def _fix_small(d, a, b, eps=1e-9):
    """Clamp ``d`` at 0 and recompute its entries below ``eps`` as ``|a_i - b_j|^2``."""
    d.clamp_min_(0)
    i, j = (d < eps).nonzero(as_tuple=True)
    if len(i):
        d[i, j] = (a[i] - b[j]).pow(2).sum(1)
    return d


def _size_pair(resize):
    if resize is None:
        return None
    if isinstance(resize, int):
        resize = (resize, resize)
    resize = tuple(int(s) for s in resize)
    if len(resize) != 2 or min(resize) < MIN_SIZE:
        raise ValueError(f'resize must be None, an int or (h, w), each >= {MIN_SIZE}; '
                         f'got {resize!r}.')
    return resize
