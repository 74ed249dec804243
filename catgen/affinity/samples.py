"""Image / label-map samples of catgen data sets, read directly for the affinity estimators.

The data-driven estimators (:class:`~catgen.affinity.SegmenterAffinity`,
:class:`~catgen.affinity.FeatureAffinity`) read image and label-map files straight from a data
set's data infos (``img_path``, ``seg_map_path``, channel space via ``label_shift``); the data
set's pipeline is not run. Label maps are in channel space (0 = don't care, class ``c`` of the
data set's real classes is channel ``c + 1``; docs/conventions.md).
"""
import hashlib
from pathlib import Path

import numpy as np

__all__ = ['build_image_dataset', 'dataset_samples', 'files_key', 'read_sample',
           'batches_by_size', 'label_channel_to_target']


def build_image_dataset(dataset, what='dataset'):
    """A catgen data set from a config dict (its pipeline is dropped: files are read directly),
    or the data set itself.

    Raises:
        ValueError: ``dataset`` is None (says what to pass).
    """
    if dataset is None:
        raise ValueError(f'No {what}: pass {what}=dict(type=\'SynthScenesDataset\', '
                         f"data_root='data/synthscenes', domain='target', split='train', "
                         f'num_shots=100) (any catgen data set config) or a built data set.')
    if not isinstance(dataset, dict):
        return dataset
    import catgen.datasets  # noqa: F401  (registers the data sets)
    from catgen.registry import DATASETS
    from catgen.utils.setup_env import guarded_default_scope
    cfg = {k: v for k, v in dict(dataset).items() if k != 'pipeline'}
    with guarded_default_scope('catgen'):
        return DATASETS.build(cfg)


def dataset_samples(dataset):
    """``(infos, class_names)``: the data infos (dicts with ``img_path``, ``seg_map_path``,
    ``num_classes``, ``label_shift``) and the real class names in channel order (channel
    ``c + 1`` is ``class_names[c]``; channel 0 is don't care)."""
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if not infos:
        raise ValueError(f'The data set {type(dataset).__name__} is empty; the affinity '
                         f'estimator needs images with label maps.')
    for key in ('img_path', 'seg_map_path'):
        if key not in infos[0]:
            raise ValueError(f'Data infos of {type(dataset).__name__} have no {key!r}; the '
                             f'affinity estimators read image / label-map pairs from catgen '
                             f'data sets (BaseSISDataset and subclasses).')
    classes = list(dataset.metainfo['classes'])
    return infos, [str(c) for c in classes[1:]]


def files_key(infos, keys=('img_path',)):
    """Cache-key part naming the sample files: the (resolved path, size, mtime_ns) of each
    ``info[k]`` for ``k`` in ``keys``, hashed (cheap: the files are not read).

    Returns:
        ``{'num_images': len(infos), 'files_sha256': <hex digest>}``.
    """
    h = hashlib.sha256()
    for info in infos:
        for k in keys:
            p = Path(info[k])
            st = p.stat()
            h.update(f'{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n'.encode())
    return {'num_images': len(infos), 'files_sha256': h.hexdigest()}


def read_sample(info, image=True):
    """One sample's files.

    Args:
        info: a data info with ``img_path``, ``seg_map_path``, ``num_classes`` and optionally
            ``label_shift``.
        image: also read the image (False: label map only).

    Returns:
        ``(img uint8[H, W, 3] RGB or None, label int64[H, W] in channel space)``.

    Raises:
        ValueError: image and label map differ in size.
    """
    from catgen.datasets.transforms.loading import (map_to_channel_space, read_label_map,
                                                    read_rgb_image)
    img = read_rgb_image(info['img_path']) if image else None
    raw = read_label_map(info['seg_map_path'])
    label = map_to_channel_space(raw, int(info['num_classes']), int(info.get('label_shift', 0)),
                                 info['seg_map_path'])
    if img is not None and img.shape[:2] != label.shape:
        raise ValueError(f'Image {info["img_path"]} is {img.shape[:2]} but its label map '
                         f'{info["seg_map_path"]} is {label.shape}; they must be the same size.')
    return img, label


def batches_by_size(n_items, shapes, batch_size):
    """Index lists of consecutive items of equal shape, at most ``batch_size`` long."""
    out, cur = [], []
    for i in range(n_items):
        if cur and (len(cur) == batch_size or shapes[i] != shapes[cur[0]]):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def label_channel_to_target(dataset_classes, target_classes, what='dataset'):
    """int64[num_channels]: channel -> index in ``target_classes`` (-1 for don't care and for
    data set classes that are not target classes).

    Raises:
        ValueError: a target class is not a class of the data set.
    """
    missing = [t for t in target_classes if t not in dataset_classes]
    if missing:
        raise ValueError(f'Target classes {missing} are not classes of the {what} '
                         f'({list(dataset_classes)}). Estimate for the data set\'s classes (or a '
                         f'subset of them), or give the data set whose label maps hold them.')
    lut = np.full(len(dataset_classes) + 1, -1, dtype=np.int64)
    for c, name in enumerate(dataset_classes):
        if name in target_classes:
            lut[c + 1] = list(target_classes).index(name)
    return lut
