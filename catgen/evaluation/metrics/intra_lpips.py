"""Intra-cluster LPIPS (Ojha et al. 2021, used by DCL): few-shot diversity that sees memorisation.

Each generated image is assigned to its nearest training image by LPIPS (VGG); in each cluster
the first ``max_per_cluster`` members (by generation index) are kept and their mean pairwise LPIPS
taken; ``intra_lpips`` is the mean over clusters with at least 2 kept members. A generator that
reproduces its few training images scores near 0 even when its outputs differ from map to map.
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from catgen.registry import METRICS

from ..lpips_model import LazyLPIPSMixin, LPIPSModel, resolve_backbone_path
from .lpips_diversity import fake_images

#: a cluster needs this many kept members to have a pairwise LPIPS.
MIN_CLUSTER_SIZE = 2
#: suffixes read from ``train_dir``.
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')


def _progress_bar(n, enabled, title):
    """An ``mmengine.utils.ProgressBar`` over ``n`` images after a ``title`` line, or None."""
    if not enabled or n == 0:
        return None
    from mmengine.utils import ProgressBar
    print(title, flush=True)
    return ProgressBar(n, file=sys.stdout)


def _mean_upper(d):
    iu = torch.triu_indices(d.shape[0], d.shape[0], offset=1)
    return float(d[iu[0], iu[1]].mean())


def intra_lpips(model, fakes, train_emb, max_per_cluster=50, cache_mb=1024, progress=False):
    """Intra-cluster LPIPS of generated images around training images.

    Args:
        model: an :class:`~catgen.evaluation.lpips_model.LPIPSModel` (VGG for the standard
            protocol).
        fakes: generated images, ``uint8 Tensor[N, 3, H, W]`` (or float in ``[-1, 1]``), in
            generation order (which decides the members kept).
        train_emb: ``Tensor[M, D]``, ``model.embed`` of the M training images at the generated
            images' size.
        max_per_cluster: members kept per cluster: the first ones by index.
        cache_mb: embeddings of kept members computed during the assignment are kept up to
            this many MiB (VGG at 64x64: 2 MiB an image) instead of being computed again for
            the within-cluster distances; 0 computes them again (least memory).
        progress: show progress bars (assignment, then the embeddings computed again).

    Returns:
        dict with ``intra_lpips`` (float, NaN when no cluster has 2 kept members),
        ``assignment`` (``np.int64[N]``, nearest training image of each generated one, ties to
        the lower index), ``nearest_lpips`` (``np.float64[N]``, its distance),
        ``cluster_sizes`` (``np.int64[M]``, before the cap) and ``cluster_lpips``
        (``{training index: mean pairwise LPIPS}`` over the clusters that count).
    """
    if max_per_cluster < MIN_CLUSTER_SIZE:
        raise ValueError(f'max_per_cluster must be >= {MIN_CLUSTER_SIZE}, got {max_per_cluster}')
    n = len(fakes)
    if n == 0:
        raise ValueError('intra_lpips got no generated images.')
    assignment = np.empty(n, dtype=np.int64)
    nearest = np.empty(n, dtype=np.float64)
    bar = _progress_bar(n, progress, 'IntraLPIPS: assigning generated images to their '
                        'nearest training image')
    step = model.batch_size
    cache, budget = {}, cache_mb * 2 ** 20
    counts = np.zeros(len(train_emb), dtype=np.int64)
    for start in range(0, n, step):
        emb = model.embed(fakes[start:start + step], progress=bar)
        dist, idx = LPIPSModel.cdist(emb, train_emb).min(dim=1)  # first minimum on ties
        assignment[start:start + step] = idx.numpy()
        nearest[start:start + step] = dist.numpy()
        row_bytes = emb.shape[1] * emb.element_size()
        for r, c in enumerate(idx.tolist()):
            if counts[c] < max_per_cluster and (len(cache) + 1) * row_bytes <= budget:
                cache[start + r] = emb[r].clone()  # a kept member: its embedding is needed again
            counts[c] += 1
    if bar is not None:
        print()
    sizes = np.bincount(assignment, minlength=len(train_emb))
    kept = {c: np.flatnonzero(assignment == c)[:max_per_cluster] for c in range(len(train_emb))}
    kept = {c: m for c, m in kept.items() if len(m) >= MIN_CLUSTER_SIZE}
    again = sum(int(i not in cache) for m in kept.values() for i in m)
    bar = _progress_bar(again, progress, f'IntraLPIPS: embedding {again} images again for '
                        f'the within-cluster LPIPS')
    cluster_lpips = {}
    for c, members in kept.items():
        missing = [int(i) for i in members if i not in cache]
        if missing:
            fresh = model.embed(fakes[torch.tensor(missing)], progress=bar)
            cache.update(zip(missing, fresh))
        emb = torch.stack([cache.pop(int(i)) for i in members])
        cluster_lpips[c] = _mean_upper(LPIPSModel.pdist(emb))
    if bar is not None:
        print()
    value = float(np.mean(list(cluster_lpips.values()))) if cluster_lpips else float('nan')
    return dict(intra_lpips=value, assignment=assignment, nearest_lpips=nearest,
                cluster_sizes=sizes, cluster_lpips=cluster_lpips)


def training_image_paths(train_dataset=None, train_dir=None):
    """Paths of the training images: from a data set (config dict or object) or a folder.

    A data set gives ``get_data_info(i)['img_path']`` for every index (its few-shot subset when
    it has ``num_shots``); a folder gives its files with an image suffix, sorted by name.
    """
    if (train_dataset is None) == (train_dir is None):
        raise ValueError('IntraLPIPS needs exactly one of train_dataset (a dataset config, e.g. '
                         "dict(type='SynthScenesDataset', domain='target', split='train', "
                         'num_shots=25)) or train_dir (a folder of the training images).')
    if train_dir is not None:
        folder = Path(train_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f'IntraLPIPS train_dir {folder} is not a folder; it should '
                                    f'hold the training images ({", ".join(IMAGE_SUFFIXES)}).')
        paths = sorted(str(p) for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith('.'))
        if not paths:
            raise FileNotFoundError(f'IntraLPIPS train_dir {folder} holds no image files '
                                    f'({", ".join(IMAGE_SUFFIXES)}).')
        return paths
    dataset = train_dataset
    if isinstance(dataset, dict):
        from catgen.registry import DATASETS
        dataset = DATASETS.build(dataset)
    if not hasattr(dataset, 'get_data_info'):
        raise TypeError(f'train_dataset must be a dataset config dict or a dataset with '
                        f'get_data_info(), got {type(dataset).__name__}.')
    paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    if not paths:
        raise ValueError(f'IntraLPIPS train_dataset {type(dataset).__name__} is empty.')
    return paths


def load_training_images(paths, size):
    """``float32 Tensor[M, 3, h, w]`` in ``[-1, 1]``: the images at ``paths`` resized (bilinear,
    antialiased, aspect ratio not kept) to ``size = (h, w)`` where they differ."""
    from catgen.datasets.transforms.loading import read_rgb_image
    out = []
    for path in paths:
        img = torch.from_numpy(read_rgb_image(path).copy()).permute(2, 0, 1)[None]
        img = img.float() / 127.5 - 1
        if tuple(img.shape[-2:]) != tuple(size):
            img = F.interpolate(img, size=tuple(size), mode='bilinear', align_corners=False,
                                antialias=True).clamp_(-1, 1)
        out.append(img)
    return torch.cat(out)


@METRICS.register_module()
class IntraLPIPS(LazyLPIPSMixin, BaseMetric):
    """Intra-cluster LPIPS of the generated images around the training images (few-shot
    diversity, Ojha et al. 2021 / DCL). See :func:`intra_lpips` for the computation.

    The generated images are the synthesizer's predict outputs, ``fake_img`` (``uint8
    [K, 3, H, W]`` with ``model.num_eval_samples=K``, or ``[3, H, W]``): every one of the
    eval maps x K images counts (e.g. 100 maps x K=10 for the usual 1,000), in the order
    (``sample_idx``, k), which decides the ``max_per_cluster`` members kept. They are kept in
    memory (uint8) until :meth:`compute_metrics`, which runs on one process with progress bars.

    Training images are read from their files (no pipeline, no flip) and resized to the
    generated size when theirs differs (bilinear, antialiased, aspect ratio not kept); their
    embeddings are cached between evaluations.

    Outputs (with the default prefix): ``diversity/intra_lpips`` (float; NaN when no cluster has
    2 members), ``diversity/intra_lpips_clusters`` (clusters that count) and
    ``diversity/intra_lpips_images`` (generated images used).

    Args:
        train_dataset: config dict (built with catgen's DATASETS, e.g. ``dict(type=
            'SynthScenesDataset', data_root='data/synthscenes', domain='target',
            split='train', num_shots=25)``) or a dataset object; its ``img_path``\\ s are used.
        train_dir: instead of ``train_dataset``, a folder of training images (sorted by name).
        net: LPIPS backbone, ``'vgg'`` (default, the protocol's) or ``'alex'``.
        backbone_path: local torchvision checkpoint of the backbone; ``None``: torchvision's cache
            file (``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth`` for VGG). Checked when
            the metric is built.
        max_per_cluster: members kept per cluster (first by index), 50 in the protocol.
        max_images: use only the first ``max_images`` generated images; ``None``: all.
        resize: ``None`` or an int / ``(h, w)``: size of all images (generated and training)
            for LPIPS; ``None`` uses the generated size.
        batch_size: images per backbone forward.
        device: where LPIPS runs; ``None``: CUDA when available, else CPU.
        cache_mb: memory (MiB) for keeping kept members' embeddings between the assignment and
            the within-cluster pass (see :func:`intra_lpips`); 0: compute them twice.
        progress: show progress bars in :meth:`compute_metrics`.
        prefix: metric name prefix (default ``'diversity'``).
        collect_device: ``'cpu'`` or ``'gpu'`` for gathering results across processes.
    """

    default_prefix = 'diversity'

    def __init__(self, train_dataset=None, train_dir=None, net='vgg', backbone_path=None,
                 max_per_cluster=50, max_images=None, resize=None, batch_size=16, device=None,
                 cache_mb=1024, progress=True, prefix=None, collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not isinstance(max_per_cluster, int) or max_per_cluster < MIN_CLUSTER_SIZE:
            raise ValueError(f'max_per_cluster must be an int >= {MIN_CLUSTER_SIZE}, got '
                             f'{max_per_cluster!r}')
        if max_images is not None and (not isinstance(max_images, int) or max_images < 2):
            raise ValueError(f'max_images must be None or an int >= 2, got {max_images!r}')
        self.train_paths = training_image_paths(train_dataset, train_dir)
        self.net = net
        self.backbone_path = resolve_backbone_path(net, backbone_path)  # fail early
        self.max_per_cluster = max_per_cluster
        self.max_images = max_images
        self.resize = resize
        self.batch_size = batch_size
        self.device = device
        self.cache_mb = cache_mb
        self.progress = progress
        self._model = None
        self._train_emb = {}  # (h, w) -> Tensor[M, D]

    def train_embeddings(self, size):
        """``Tensor[M, D]``: LPIPS embeddings of the training images at ``size = (h, w)``."""
        size = tuple(size)
        if size not in self._train_emb:
            imgs = load_training_images(self.train_paths, size)
            bar = _progress_bar(len(imgs), self.progress,
                                f'IntraLPIPS: embedding {len(imgs)} training images')
            self._train_emb[size] = self.model.embed(imgs, progress=bar)
            if bar is not None:
                print()
        return self._train_emb[size]

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            idx = ds.get('sample_idx') if isinstance(ds, dict) else ds.metainfo.get('sample_idx')
            self.results.append((idx, fake_images(ds).cpu().numpy()))

    def compute_metrics(self, results):
        if not results:
            print_log('IntraLPIPS: no samples were processed.', logger='current')
            return dict(intra_lpips=float('nan'), intra_lpips_clusters=0, intra_lpips_images=0)
        if all(idx is not None for idx, _ in results):
            results = sorted(results, key=lambda r: r[0])  # stable: dataset order across ranks
        shapes = {tuple(f.shape[-2:]) for _, f in results}
        if len(shapes) > 1 and self.resize is None:
            raise ValueError(f'IntraLPIPS got generated images of several sizes {sorted(shapes)}; '
                             f'set resize=(h, w) in the metric to compare them at one size.')
        if len(shapes) > 1:  # bring them to `resize` now (float [-1, 1], on the CPU)
            fakes = torch.cat([self.model.to_input(torch.from_numpy(f)).cpu() for _, f in results])
        else:
            fakes = torch.from_numpy(np.concatenate([f for _, f in results]))
        if self.max_images is not None:
            fakes = fakes[:self.max_images]
        size = self.model.resize or tuple(fakes.shape[-2:])
        out = intra_lpips(self.model, fakes, self.train_embeddings(size),
                          max_per_cluster=self.max_per_cluster, cache_mb=self.cache_mb,
                          progress=self.progress)
        sizes = out['cluster_sizes']
        print_log(f'IntraLPIPS: {len(fakes)} generated images over {len(sizes)} training images; '
                  f'cluster sizes {sizes.tolist()}; {len(out["cluster_lpips"])} clusters with >= '
                  f'{MIN_CLUSTER_SIZE} members; mean LPIPS to the nearest training image '
                  f'{out["nearest_lpips"].mean():.4f}.', logger='current')
        return dict(intra_lpips=out['intra_lpips'],
                    intra_lpips_clusters=len(out['cluster_lpips']),
                    intra_lpips_images=len(fakes))
