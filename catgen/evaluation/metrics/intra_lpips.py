"""Intra-cluster LPIPS (Ojha et al. 2021, used by DCL): few-shot diversity that sees memorisation.

As the official protocol (CDC's ``feat_cluster.py``): each generated image is assigned to its
nearest training image by LPIPS (VGG); in each cluster a seeded random ``max_per_cluster`` (50)
members are kept (all of them in a smaller cluster) and their mean pairwise LPIPS taken;
``intra_lpips`` is the mean over clusters with at least 2 kept members. A generator that
reproduces its few training images scores near 0 even when its outputs differ from map to map.

The random subset: every generated image gets a rank from one seeded permutation of
``0 .. N - 1`` (``numpy.random.default_rng(seed)``); a cluster keeps its ``max_per_cluster``
members of lowest rank, i.e. a uniformly random subset per cluster, the same for the same seed
and the same generated images. (Keeping the first ones by index, as catgen did before, biases
the subset towards the first label maps.)

Image size: the official code resizes every image to 256x256 before LPIPS. catgen's
:class:`IntraLPIPS` uses the generated size by default (``resize=None``): the same as the
official protocol for 256x256 generators, and for small generators (SynthScenes, 64x64) about
16 times cheaper on a CPU; ``resize=256`` gives the official protocol. Values at different sizes
are not comparable.
"""
import bisect
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


def random_ranks(n, seed):
    """``np.int64[n]``: a seeded random permutation of ``0 .. n - 1``, the rank of each
    generated image in the random choice of cluster members (lower rank kept first)."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


def kept_members(assignment, ranks, num_clusters, max_per_cluster):
    """``{cluster: np.int64[k]}``: per cluster the (at most ``max_per_cluster``) members of
    lowest rank, sorted by index; a uniformly random subset when ``ranks`` is a random
    permutation. Clusters with no member are left out."""
    out = {}
    for c in range(num_clusters):
        members = np.flatnonzero(assignment == c)
        if len(members):
            chosen = members[np.argsort(ranks[members], kind='stable')[:max_per_cluster]]
            out[c] = np.sort(chosen)
    return out


class _KeptSoFar:
    """Per cluster the members of lowest rank seen so far (what :func:`kept_members` will
    return once every image is assigned): which embeddings are worth caching."""

    def __init__(self, max_per_cluster):
        self.cap = max_per_cluster
        self.best = {}  # cluster -> sorted list of (rank, index)

    def add(self, cluster, rank, index):
        """Record ``index``; returns ``(kept, evicted)``: whether it is among the lowest ranks
        of its cluster now, and the index it pushed out (or None)."""
        best = self.best.setdefault(cluster, [])
        if len(best) == self.cap and rank > best[-1][0]:
            return False, None
        bisect.insort(best, (rank, index))
        evicted = best.pop()[1] if len(best) > self.cap else None
        return True, evicted


def intra_lpips(model, fakes, train_emb, max_per_cluster=50, seed=0, cache_mb=1024,
                progress=False):
    """Intra-cluster LPIPS of generated images around training images.

    Args:
        model: an :class:`~catgen.evaluation.lpips_model.LPIPSModel` (VGG for the standard
            protocol), or any object with ``batch_size`` and ``embed(imgs, progress)`` returning
            ``Tensor[n, D]`` whose squared Euclidean distances are the LPIPS values.
        fakes: generated images, ``uint8 Tensor[N, 3, H, W]`` (or float in ``[-1, 1]``), in
            generation order.
        train_emb: ``Tensor[M, D]``, ``model.embed`` of the M training images at the generated
            images' size.
        max_per_cluster: members kept per cluster, drawn at random (see the module doc).
        seed: seed of that random choice.
        cache_mb: embeddings computed during the assignment are kept up to this many MiB
            (VGG at 64x64: 2 MiB an image), those of the members kept so far only, instead of
            being computed again for the within-cluster distances; 0 computes them again
            (least memory).
        progress: show progress bars (assignment, then the embeddings computed again).

    Returns:
        dict with ``intra_lpips`` (float, NaN when no cluster has 2 kept members),
        ``assignment`` (``np.int64[N]``, nearest training image of each generated one, ties to
        the lower index), ``nearest_lpips`` (``np.float64[N]``, its distance),
        ``cluster_sizes`` (``np.int64[M]``, before the cap), ``kept`` (``{training index:
        np.int64[k]}``, the generated images kept in each cluster that counts, sorted) and
        ``cluster_lpips`` (``{training index: mean pairwise LPIPS}`` over those clusters).
    """
    if max_per_cluster < MIN_CLUSTER_SIZE:
        raise ValueError(f'max_per_cluster must be >= {MIN_CLUSTER_SIZE}, got {max_per_cluster}')
    n = len(fakes)
    if n == 0:
        raise ValueError('intra_lpips got no generated images.')
    ranks = random_ranks(n, seed)
    assignment = np.empty(n, dtype=np.int64)
    nearest = np.empty(n, dtype=np.float64)
    bar = _progress_bar(n, progress, 'IntraLPIPS: assigning generated images to their '
                        'nearest training image')
    step = model.batch_size
    cache, budget = {}, cache_mb * 2 ** 20
    so_far = _KeptSoFar(max_per_cluster)
    for start in range(0, n, step):
        emb = model.embed(fakes[start:start + step], progress=bar)
        dist, idx = LPIPSModel.cdist(emb, train_emb).min(dim=1)  # first minimum on ties
        assignment[start:start + step] = idx.numpy()
        nearest[start:start + step] = dist.numpy()
        row_bytes = emb.shape[1] * emb.element_size()
        for r, c in enumerate(idx.tolist()):
            i = start + r
            kept, evicted = so_far.add(c, int(ranks[i]), i)
            cache.pop(evicted, None)
            if kept and (len(cache) + 1) * row_bytes <= budget:
                cache[i] = emb[r].clone()  # kept so far: its embedding may be needed again
    if bar is not None:
        print()
    sizes = np.bincount(assignment, minlength=len(train_emb))
    kept = kept_members(assignment, ranks, len(train_emb), max_per_cluster)
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
                cluster_sizes=sizes, kept=kept, cluster_lpips=cluster_lpips)


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
    (``sample_idx``, k), which gives each image its place in the seeded random choice of the
    ``max_per_cluster`` members kept (see :func:`intra_lpips`). They are kept in memory
    (uint8) until :meth:`compute_metrics`, which runs on one process with progress bars.

    Training images are read from their files (no pipeline, no flip) and resized to the
    generated size (or to ``resize``) when theirs differs (bilinear, antialiased, aspect ratio
    not kept); their embeddings are cached between evaluations. With ``resize`` the generated
    images are resized the same way before LPIPS (the official protocol: ``resize=256``).

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
        max_per_cluster: members kept per cluster, drawn at random (seeded), 50 in the
            protocol; a smaller cluster keeps all its members.
        seed: seed of the random choice of members (same seed and images: same members).
        max_images: use only the first ``max_images`` generated images; ``None``: all.
        resize: ``None`` (default) or an int / ``(h, w)``: size of all images (generated and
            training) for LPIPS; ``None`` uses the generated size (equal to the official
            protocol for 256x256 generators, and about 16x cheaper than it for 64x64 ones);
            ``256``: the official protocol (CDC's feat_cluster.py) at any generated size.
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
                 max_per_cluster=50, seed=0, max_images=None, resize=None, batch_size=16,
                 device=None, cache_mb=1024, progress=True, prefix=None, collect_device='cpu'):
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
        self.seed = seed
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
                          max_per_cluster=self.max_per_cluster, seed=self.seed,
                          cache_mb=self.cache_mb, progress=self.progress)
        sizes = out['cluster_sizes']
        print_log(f'IntraLPIPS: {len(fakes)} generated images over {len(sizes)} training images, '
                  f'LPIPS at {size[0]}x{size[1]}, up to {self.max_per_cluster} random members '
                  f'per cluster (seed {self.seed}); cluster sizes {sizes.tolist()}; '
                  f'{len(out["cluster_lpips"])} clusters with >= '
                  f'{MIN_CLUSTER_SIZE} members; mean LPIPS to the nearest training image '
                  f'{out["nearest_lpips"].mean():.4f}.', logger='current')
        return dict(intra_lpips=out['intra_lpips'],
                    intra_lpips_clusters=len(out['cluster_lpips']),
                    intra_lpips_images=len(fakes))
