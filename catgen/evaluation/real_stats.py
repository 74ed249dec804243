"""Real-image features for FID / KID, cached on disk.

The features of the real images of an evaluation data set depend only on the image files, on
the data set's pipeline and on the feature extractor, so they are computed once and cached in
``cache_dir`` (default ``work_dirs/.cache/real_stats``) as ``<extractor name>-<hash>.npz``, a
:class:`catgen.utils.cache.DiskCache` file (atomic writes; the full key stored inside, a file
of another key is a miss). The hash (sha256 of a canonical JSON) covers:

- the image files: path relative to their common folder and content sha256 of every
  ``img_path`` in the data set's data infos, in order (so a changed, added, removed or
  reordered image recomputes; moving the data set folder keeps the cache);
- the data set class and its pipeline: each transform's class and attributes (e.g. a Resize
  scale), so a changed pipeline recomputes;
- the feature extractor's :meth:`~catgen.evaluation.feature_extractors.BaseFeatureExtractor.
  cache_key` (class, name, settings, content hash of its weights).

Label maps are not part of the key (the image features do not depend on them).

Protocol under distributed evaluation (:func:`load_or_compute_real_features`): rank 0 loads the
file or computes the features and writes them atomically; the other ranks wait at a barrier and
then read the file (only rank 0 needs them to compute the metric, so a rank that cannot read
it, e.g. without a shared file system, just logs a warning).
"""
import hashlib
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import torch

from catgen.utils.cache import DiskCache, cache_key, file_sha256, load_npz, save_npz

__all__ = ['DEFAULT_CACHE_DIR', 'dataset_image_files', 'describe_pipeline', 'real_features_key',
           'cache_path', 'load_features', 'save_features', 'extract_dataset_features',
           'load_or_compute_real_features']

DEFAULT_CACHE_DIR = 'work_dirs/.cache/real_stats'


def _log(msg, level=logging.INFO):
    from mmengine.logging import print_log
    print_log(msg, logger='current', level=level)


# ---------------------------------------------------------------------------- the key
def dataset_image_files(dataset):
    """``img_path`` of every data info of ``dataset``, in order (``list[str]``).

    Raises ValueError when a data info has no ``img_path`` (the cache cannot be keyed then).
    """
    if not hasattr(dataset, 'get_data_info'):
        raise ValueError(f'{type(dataset).__name__} has no get_data_info(idx): the real-feature '
                         f'cache needs data infos with img_path; use an MMEngine BaseDataset or '
                         f'pass use_cache=False to the metric.')
    files = []
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        path = info.get('img_path') if isinstance(info, dict) else None
        if path is None:
            raise ValueError(f'Data info {i} of {type(dataset).__name__} has no img_path: the '
                             f'real-feature cache is keyed by the image files; pass '
                             f'use_cache=False to the metric for such a data set.')
        files.append(str(path))
    return files


def _stable(value, depth=0):
    """A JSON-able description of a transform attribute (no memory addresses)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return {'ndarray': value.tolist()} if value.size <= 64 else \
            {'ndarray_sha256': hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}
    if isinstance(value, torch.Tensor):
        return _stable(value.detach().cpu().numpy(), depth)
    if isinstance(value, (list, tuple)):
        return [_stable(v, depth) for v in value]
    if isinstance(value, dict):
        return {str(k): _stable(v, depth) for k, v in sorted(value.items(), key=lambda kv:
                                                               str(kv[0]))}
    if isinstance(value, Path):
        return str(value)
    if callable(value) and hasattr(value, '__qualname__'):
        return f'{getattr(value, "__module__", "")}.{value.__qualname__}'
    if depth < 3 and hasattr(value, '__dict__'):
        return _describe_object(value, depth + 1)
    return type(value).__qualname__


def _describe_object(obj, depth=0):
    cls = type(obj)
    attrs = {k: _stable(v, depth) for k, v in sorted(vars(obj).items())
             if not k.startswith('__')}
    return {'class': f'{cls.__module__}.{cls.__qualname__}', 'attrs': attrs}


def describe_pipeline(pipeline):
    """A JSON-able description of a data set pipeline: one ``{'class', 'attrs'}`` per transform.

    Accepts MMEngine's ``Compose`` (``.transforms``), a list of transforms, or None.
    """
    if pipeline is None:
        return []
    transforms = getattr(pipeline, 'transforms', pipeline)
    return [_describe_object(t) for t in transforms]


def real_features_key(extractor, dataset, memo=None):
    """sha256 hex digest that identifies the real features of ``dataset`` under ``extractor``
    (see the module docstring for what it covers).

    ``memo``: ignored (kept for callers of the former signature): file hashes are memoised by
    :func:`catgen.utils.cache.file_sha256` on (path, size, mtime) for the whole process.
    """
    files = dataset_image_files(dataset)
    if not files:
        raise ValueError(f'{type(dataset).__name__} is empty: no real image to compute FID/KID '
                         f'statistics from.')
    root = os.path.commonpath([os.path.abspath(f) for f in files])
    if len(files) == 1:
        root = os.path.dirname(root)
    files_h = hashlib.sha256()
    for f in files:
        files_h.update(os.path.relpath(os.path.abspath(f), root).encode())
        files_h.update(b'\0')
        files_h.update(file_sha256(f, 'real image').encode())
        files_h.update(b'\n')
    parts = {
        'version': 1,
        'dataset': type(dataset).__qualname__,
        'num_images': len(files),
        'files_sha256': files_h.hexdigest(),
        'pipeline': describe_pipeline(getattr(dataset, 'pipeline', None)),
        'extractor': extractor.cache_key(),
    }
    return cache_key(**json.loads(json.dumps(parts, default=str)))


def cache_path(cache_dir, extractor, key):
    """``cache_dir/<extractor name>-<first 32 hex digits of key>.npz``."""
    return DiskCache(cache_dir).path(extractor.name, key)


# ---------------------------------------------------------------------------- the file
def save_features(path, features, key, meta=None):
    """Write ``features`` (``float32 [N, D]``) with ``key`` and a JSON ``meta`` to ``path``
    atomically (``.npz``, :func:`catgen.utils.cache.save_npz`)."""
    return save_npz(path, {'features': np.asarray(features, dtype=np.float32),
                           'meta': np.array(json.dumps(meta or {}, default=str))}, key)


def load_features(path, key=None):
    """The ``float32 [N, D]`` features in ``path``, or None when the file is absent,
    unreadable or written for another ``key``."""
    arrays = load_npz(path, key)
    if arrays is None or 'features' not in arrays:  # truncated or foreign file: recompute
        return None
    return np.asarray(arrays['features'], dtype=np.float32)


# ---------------------------------------------------------------------------- computing
def _progress(total, enabled, desc):
    if not enabled:
        return None
    from tqdm import tqdm
    # disable=None: tqdm shows the bar on a terminal only (no \r noise in log files)
    return tqdm(total=total, desc=desc, unit='img', disable=None, file=sys.stderr)


def extract_dataset_features(extractor, dataset, batch_size=16, num_workers=0, progress=True):
    """Features of every real image of ``dataset``, through the data set's own pipeline.

    Each sample's ``inputs['img']`` (``uint8 Tensor[3, H, W]``, as ``PackSISInputs`` gives it)
    goes through ``extractor``; a batch whose images differ in size is run image by image.

    Args:
        extractor: a feature extractor (uint8 ``[B, 3, H, W]`` -> ``[B, D]``).
        dataset: a data set whose items are ``{'inputs': {'img': ...}, ...}``.
        batch_size, num_workers: of the DataLoader that reads it (in order, all samples).
        progress: show a progress bar (on a terminal).

    Returns:
        ``np.float32 [len(dataset), D]``.
    """
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=pseudo_collate, drop_last=False)
    bar = _progress(len(dataset), progress, f'real features ({extractor.name})')
    out = []
    try:
        for batch in loader:
            inputs = batch.get('inputs') if isinstance(batch, dict) else None
            imgs = inputs.get('img') if isinstance(inputs, dict) else None
            if imgs is None:
                raise ValueError(f'{type(dataset).__name__} samples have no inputs["img"]: FID/'
                                 f'KID real features need the real image (PackSISInputs '
                                 f'gives uint8 Tensor[3, H, W]); check the pipeline.')
            out.append(extract_images(extractor, imgs))
            if bar is not None:
                bar.update(len(imgs))
    finally:
        if bar is not None:
            bar.close()
    return np.concatenate(out, axis=0).astype(np.float32)


def extract_images(extractor, imgs):
    """Features of a list (or batch tensor) of ``uint8 [3, H, W]`` images -> ``np.float32
    [B, D]``; images of different sizes are run one by one."""
    if isinstance(imgs, torch.Tensor) and imgs.dim() == 4:
        batches = [imgs]
    else:
        imgs = list(imgs)
        shapes = {tuple(t.shape) for t in imgs}
        batches = [torch.stack(imgs)] if len(shapes) == 1 else [t[None] for t in imgs]
    feats = [extractor(b).cpu().numpy() for b in batches]
    return np.concatenate(feats, axis=0).astype(np.float32)


def load_or_compute_real_features(extractor, dataset, cache_dir=DEFAULT_CACHE_DIR,
                                  use_cache=True, batch_size=16, num_workers=0, progress=True,
                                  memo=None):
    """The real features of ``dataset`` under ``extractor``: from the cache, or computed.

    Rank 0 loads ``cache_path(...)`` or computes the features (:func:`extract_dataset_features`)
    and writes them atomically; every rank then meets at a barrier, and ranks > 0 read the file.

    Args:
        extractor: the feature extractor.
        dataset: the evaluation data set (real images through its pipeline).
        cache_dir: where the ``.npz`` files live.
        use_cache: False computes on rank 0 without reading or writing any file (other ranks
            then return None).
        batch_size, num_workers, progress: as :func:`extract_dataset_features`.
        memo: as :func:`real_features_key`.

    Returns:
        ``np.float32 [N, D]`` (None on ranks > 0 that could not read it).
    """
    from mmengine.dist import barrier, get_rank
    rank = get_rank()
    path = None
    feats = None
    if use_cache:
        key = real_features_key(extractor, dataset, memo)
        path = cache_path(cache_dir, extractor, key)
    if rank == 0:
        if path is not None:
            feats = load_features(path, key)
            if feats is not None:
                _log(f'Real features of {len(dataset)} images ({extractor.name}) loaded from '
                     f'{path}')
        if feats is None:
            _log(f'Computing the real features of {len(dataset)} images of '
                 f'{type(dataset).__name__} with {extractor.name}'
                 + (f' (cached in {path})' if path is not None else ' (no cache)'))
            feats = extract_dataset_features(extractor, dataset, batch_size=batch_size,
                                             num_workers=num_workers, progress=progress)
            if path is not None:
                save_features(path, feats, key, meta={
                    'extractor': extractor.cache_key(), 'dataset': type(dataset).__qualname__,
                    'num_images': len(dataset)})
    barrier()
    if rank != 0 and path is not None:
        feats = load_features(path, key)
        if feats is None:
            _log(f'Rank {rank} cannot read the real features rank 0 wrote to {path} (no shared '
                 f'file system?); only rank 0 needs them.', level=logging.WARNING)
    return feats
