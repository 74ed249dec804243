"""BaseFeatureMetric: the shared machinery of FID and KID (features of fakes and reals).

How a feature metric gets its two sets of features:

- generated images: in :meth:`BaseFeatureMetric.process`, from each data sample's ``fake_img``
  (``uint8 [3, H, W]``, or ``[K, 3, H, W]`` with ``model.num_eval_samples=K``: the first sample
  only unless ``use_all_samples=True``), which the synthesizer's val/test step generated for the
  evaluation label maps;
- real images, two ways:
    - with catgen's :class:`~catgen.engine.loops.GenValLoop` / ``GenTestLoop``, the loop calls
      :meth:`BaseFeatureMetric.prepare` before iterating: the real images of the loop's data set
      (through the data set's own pipeline) are featurised once and cached on disk
      (:mod:`catgen.evaluation.real_stats`, keyed by the image files, the pipeline and the
      extractor), so later evaluations only featurise the generated images;
    - with MMEngine's plain ``ValLoop`` / ``TestLoop`` (no ``prepare``), from each data sample's
      ``gt_img`` in :meth:`process`, every time (no cache).

Both give the same real features: ``gt_img`` is the pipeline's image passed through the data
preprocessor and back to uint8, which is exact.

Output keys are ``<quantity>`` for the standard FID network and ``<quantity>_<extractor name>``
otherwise (see :meth:`~catgen.evaluation.feature_extractors.BaseFeatureExtractor.metric_key`).
"""
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from catgen.evaluation.feature_extractors import BaseFeatureExtractor
from catgen.evaluation.real_stats import (DEFAULT_CACHE_DIR, extract_images,
                                          load_or_compute_real_features)
from catgen.registry import MODELS

__all__ = ['BaseFeatureMetric']


def _get(ds, key):
    if isinstance(ds, dict):
        return ds.get(key)
    return getattr(ds, key, None)


class BaseFeatureMetric(BaseMetric):
    """Base class of metrics that compare features of generated and real images.

    Subclasses implement :meth:`compute_from_features`.

    Args:
        feature_extractor: config (``MODELS``) or instance of a
            :class:`~catgen.evaluation.feature_extractors.BaseFeatureExtractor`, e.g.
            ``dict(type='InceptionV3FeatureExtractor')`` (the default, None) or
            ``dict(type='SegmenterFeatureExtractor', config=..., checkpoint=...)``.
        use_all_samples: with ``K > 1`` images per label map, use all K (True) or only the
            first (False, default: comparable across K).
        cache_dir: directory of the real-feature cache (used through :meth:`prepare`).
        use_cache: False: :meth:`prepare` computes the real features every time.
        batch_size: batch size for the real images in :meth:`prepare`; None = the
            dataloader's.
        device: where the extractor runs; None = the model's device in :meth:`prepare`, else
            CUDA when available, else CPU.
        progress: progress bar over the real images in :meth:`prepare` (terminal only).
        prefix: MMEngine metric prefix (default none: keys such as ``fid`` stay bare).
        collect_device: 'cpu' or 'gpu', for gathering results across processes.
    """

    default_prefix = ''  # bare keys ('fid', 'kid_seg-...'); a prefix p gives 'p/fid'

    def __init__(self, feature_extractor=None, use_all_samples=False,
                 cache_dir=DEFAULT_CACHE_DIR, use_cache=True, batch_size=None, device=None,
                 progress=True, prefix=None, collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if feature_extractor is None:
            feature_extractor = dict(type='InceptionV3FeatureExtractor')
        if isinstance(feature_extractor, dict):
            feature_extractor = MODELS.build(feature_extractor)
        if not isinstance(feature_extractor, BaseFeatureExtractor):
            raise TypeError(f'{type(self).__name__}: feature_extractor must be a config dict or '
                            f'a BaseFeatureExtractor (catgen.evaluation.feature_extractors), '
                            f'got {type(feature_extractor).__name__}.')
        self.extractor = feature_extractor
        self.use_all_samples = bool(use_all_samples)
        self.cache_dir = cache_dir
        self.use_cache = bool(use_cache)
        self.batch_size = batch_size
        self.device = device
        self.progress = progress
        self.real_features = None   # np.float32 [N, D] after prepare() (rank 0)
        self.prepared = False
        self._hash_memo = {}
        self._placed = False

    # ------------------------------------------------------------------ helpers
    def key(self, quantity):
        """Output key of ``quantity`` ('fid', 'kid', 'kid_std') under this extractor."""
        return self.extractor.metric_key(quantity)

    def _place(self, fallback=None):
        """Move the extractor to ``device`` (or ``fallback``, or CUDA if available, else CPU)."""
        if self.device is not None:
            target = torch.device(self.device)
        elif fallback is not None:
            target = torch.device(fallback)
        else:
            target = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
        self.extractor.to(target)
        self._placed = True

    # ------------------------------------------------------------------ the protocol
    def prepare(self, model, dataloader):
        """Featurise (or load from the cache) the real images of ``dataloader.dataset``.

        Called by :class:`~catgen.engine.loops.GenValLoop` / ``GenTestLoop`` before they
        iterate. Rank 0 computes and writes; other ranks wait and read.
        """
        device = None
        if model is not None:
            try:
                device = next(model.parameters()).device
            except (StopIteration, AttributeError):
                device = None
        self._place(device)
        batch_size = self.batch_size or getattr(dataloader, 'batch_size', None) or 16
        self.real_features = load_or_compute_real_features(
            self.extractor, dataloader.dataset, cache_dir=self.cache_dir,
            use_cache=self.use_cache, batch_size=batch_size,
            num_workers=getattr(dataloader, 'num_workers', 0), progress=self.progress,
            memo=self._hash_memo)
        self.prepared = True

    def process(self, data_batch, data_samples):
        """Featurise the generated images (and, without :meth:`prepare`, the real ones)."""
        if not self._placed:
            self._place()
        fakes, counts, reals = [], [], []
        for ds in data_samples:
            fake = _get(ds, 'fake_img')
            if fake is None:
                raise KeyError(f'{type(self).__name__} needs data samples with fake_img (the '
                               f'synthesizer\'s predict mode); got keys '
                               f'{sorted(ds.keys()) if isinstance(ds, dict) else type(ds)}.')
            fake = torch.as_tensor(fake)
            if fake.dim() == 3:
                fake = fake[None]
            elif not self.use_all_samples:
                fake = fake[:1]
            fakes.extend(fake)
            counts.append(len(fake))
            if not self.prepared:
                real = _get(ds, 'gt_img')
                if real is None:
                    raise KeyError(f'{type(self).__name__} without prepare() (plain ValLoop/'
                                   f'TestLoop) takes the real features from gt_img, which the '
                                   f'data samples lack: use val_cfg=dict(type="GenValLoop") / '
                                   f'test_cfg=dict(type="GenTestLoop"), or keep the real image '
                                   f'in the batch.')
                reals.append(torch.as_tensor(real))
        if not counts:
            return
        fake_feats = extract_images(self.extractor, fakes)
        real_feats = extract_images(self.extractor, reals) if reals else None
        start = 0
        for i, n in enumerate(counts):
            self.results.append(dict(fake=fake_feats[start:start + n],
                                     real=None if real_feats is None else real_feats[i]))
            start += n

    def compute_metrics(self, results):
        fake = np.concatenate([r['fake'] for r in results], axis=0).astype(np.float64)
        if self.prepared:
            if self.real_features is None:
                raise RuntimeError(f'{type(self).__name__}: prepare() ran but no real features '
                                   f'are available on this rank.')
            real = np.asarray(self.real_features, dtype=np.float64)
        else:
            missing = [i for i, r in enumerate(results) if r['real'] is None]
            if missing:
                raise RuntimeError(f'{type(self).__name__}: {len(missing)} results lack real '
                                   f'features (mixed prepare()/plain-loop use).')
            real = np.stack([r['real'] for r in results]).astype(np.float64)
        if fake.shape[1] != real.shape[1]:
            raise ValueError(f'{type(self).__name__}: generated features have {fake.shape[1]} '
                             f'dims, real ones {real.shape[1]}: the cached real features were '
                             f'made with another extractor; clear {self.cache_dir}.')
        print_log(f'{type(self).__name__} ({self.extractor.name}): {len(fake)} generated vs '
                  f'{len(real)} real images', logger='current')
        return self.compute_from_features(fake, real)

    def compute_from_features(self, fake, real):
        """fake: ``float64 [N_f, D]``, real: ``float64 [N_r, D]`` -> dict of metrics."""
        raise NotImplementedError
