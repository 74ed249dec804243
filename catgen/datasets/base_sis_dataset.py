"""BaseSISDataset: image / label-map pairs found by scanning two folders, with few-shot subsets."""
import os
from pathlib import Path

import numpy as np
from mmengine.dataset import BaseDataset

from catgen.registry import DATASETS, TRANSFORMS
from catgen.utils.io import write_text_atomic

from .few_shot import select_few_shot


def make_palette(num_classes, seed=0):
    """A deterministic palette: ``num_classes`` RGB triples, ``[0, 0, 0]`` first (don't care)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    colours = rng.integers(32, 256, size=(num_classes, 3))
    colours[0] = 0
    return colours.tolist()


def read_subset_file(path):
    """Ids (file stems) listed one per line in ``path``; blank lines and ``#`` comments skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'subset_file {path} does not exist; it should list one image id '
                                f'(file name without suffix) per line.')
    ids = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            ids.append(line)
    if not ids:
        raise ValueError(f'subset_file {path} lists no ids')
    return ids


@DATASETS.register_module()
class BaseSISDataset(BaseDataset):
    """Pairs ``<img_path>/<id><img_suffix>`` and ``<seg_map_path>/<id><seg_map_suffix>``.

    ``id`` is the image's path relative to the image folder without its suffix (sub-folders are
    scanned, so Cityscapes ids look like ``aachen/aachen_000000_000019``); hidden files are
    skipped.

    Each data info (and so each pipeline results dict) holds ``img_path``, ``seg_map_path``,
    ``img_id``, ``num_classes`` and ``label_shift`` (see :mod:`catgen.datasets.transforms.loading`
    for how ``label_shift`` maps on-disk ids to channel space).

    Args:
        data_root: the data set's folder.
        data_prefix: ``dict(img_path=..., seg_map_path=...)`` relative to ``data_root``.
        img_suffix: a suffix or a tuple of suffixes (``('.jpg', '.png')``).
        seg_map_suffix: the label map's suffix.
        pipeline: transforms (config dicts are built from ``catgen.registry.TRANSFORMS``).
        num_shots: keep ``num_shots`` ids chosen by
            :func:`catgen.datasets.few_shot.select_few_shot` with ``subset_seed`` (nested across
            shot counts); ``None`` or ``-1`` keeps all.
        subset_seed: the seed of that choice.
        subset_file: a text file of ids, one per line, to keep instead (in that order); with
            ``num_shots`` too, its first ``num_shots`` lines. Unknown ids are an error.
        metainfo: ``classes`` (``num_classes`` names, ``classes[0]`` the don't-care name),
            ``palette`` (generated when absent) and ``label_shift`` (0 or 1, default 0).
            Subclasses set these in ``METAINFO`` or from a classes file.
        test_mode, lazy_init, max_refetch, serialize_data, indices: as MMEngine's BaseDataset.

    After :meth:`full_init`, ``self.subset_ids`` is the list of kept ids when a subset was asked
    for (``num_shots`` or ``subset_file``), else ``None``; :meth:`write_subset` /
    :meth:`save_subset_ids` write it.
    """

    METAINFO = dict(dontcare_index=0, label_shift=0)
    #: file name written by :meth:`write_subset` into the work dir.
    SUBSET_FILENAME = 'subset_ids.txt'

    def __init__(self,
                 data_root='',
                 data_prefix=dict(img_path='', seg_map_path=''),
                 img_suffix='.jpg',
                 seg_map_suffix='.png',
                 pipeline=(),
                 num_shots=None,
                 subset_seed=0,
                 subset_file=None,
                 metainfo=None,
                 test_mode=False,
                 lazy_init=False,
                 max_refetch=1000,
                 serialize_data=True,
                 indices=None):
        self.img_suffix = tuple(img_suffix) if isinstance(img_suffix, (list, tuple)) \
            else (img_suffix,)
        self.seg_map_suffix = seg_map_suffix
        if num_shots is not None and num_shots != -1 and \
                (not isinstance(num_shots, int) or num_shots < 1):
            raise ValueError(f'num_shots must be a positive int, -1 or None, got {num_shots!r}')
        self.num_shots = num_shots
        self.subset_seed = subset_seed
        self.subset_file = None if subset_file is None else str(subset_file)
        self._subset_ids = None
        data_prefix = dict(data_prefix)
        for key in ('img_path', 'seg_map_path'):
            data_prefix.setdefault(key, '')
        pipeline = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(
            ann_file='', metainfo=metainfo, data_root=data_root, data_prefix=data_prefix,
            filter_cfg=None, indices=indices, serialize_data=serialize_data, pipeline=pipeline,
            test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)

    # ----------------------------------------------------------------- metainfo
    @classmethod
    def _load_metainfo(cls, metainfo=None):
        return cls._complete_metainfo(super()._load_metainfo(metainfo))

    @classmethod
    def _complete_metainfo(cls, meta):
        name = cls.__name__
        if 'classes' not in meta:
            raise ValueError(f'{name} needs metainfo["classes"]: a list of class names with the '
                             f'don\'t-care name first, e.g. ("unlabeled", "sky", "grass").')
        meta['classes'] = tuple(meta['classes'])
        n = len(meta['classes'])
        if meta.get('num_classes') not in (None, n):
            raise ValueError(f'{name}: metainfo num_classes={meta["num_classes"]} differs from '
                             f'len(classes)={n}')
        meta['num_classes'] = n
        if meta.get('palette') is None:
            meta['palette'] = make_palette(n)
        meta['palette'] = [list(map(int, c)) for c in meta['palette']]
        if len(meta['palette']) != n:
            raise ValueError(f'{name}: the palette has {len(meta["palette"])} colours for {n} '
                             f'classes (don\'t care included)')
        meta['dontcare_index'] = 0
        meta.setdefault('label_shift', 0)
        if meta['label_shift'] not in (0, 1):
            raise ValueError(f'{name}: metainfo label_shift must be 0 or 1, '
                             f'got {meta["label_shift"]!r}')
        return meta

    # ------------------------------------------------------------ layout / errors
    def expected_layout(self):
        """A small tree of the folders this data set reads (shown when they are missing)."""
        root = self.data_root or '<data_root>'
        img = os.path.relpath(self.data_prefix['img_path'], root) if self.data_root \
            else self.data_prefix['img_path']
        seg = os.path.relpath(self.data_prefix['seg_map_path'], root) if self.data_root \
            else self.data_prefix['seg_map_path']
        return (f'{root}/\n'
                f'├── {img}/\n│   └── <id>{self.img_suffix[0]}  ...\n'
                f'└── {seg}/\n    └── <id>{self.seg_map_suffix}  ...')

    def setup_hint(self):
        """One sentence on how to get the data (subclasses override)."""
        return 'See docs/datasets.md for where to put the data.'

    def _missing(self, what, path):
        return FileNotFoundError(
            f'{type(self).__name__}: {what} {path} does not exist. Expected layout:\n'
            f'{self.expected_layout()}\n{self.setup_hint()}')

    def _check_folders(self):
        if self.data_root and not Path(self.data_root).is_dir():
            raise self._missing('data root', self.data_root)
        for key, what in (('img_path', 'image folder'), ('seg_map_path', 'label map folder')):
            if not Path(self.data_prefix[key]).is_dir():
                raise self._missing(what, self.data_prefix[key])

    # ----------------------------------------------------------------- scanning
    def _scan_images(self, img_dir):
        found = {}
        for dirpath, dirnames, filenames in os.walk(img_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
            for fn in sorted(filenames):
                if fn.startswith('.'):
                    continue
                suffix = next((s for s in self.img_suffix if fn.endswith(s)), None)
                if suffix is None:
                    continue
                full = Path(dirpath) / fn
                img_id = full.relative_to(img_dir).as_posix()[:-len(suffix)]
                if img_id in found:
                    raise ValueError(f'{type(self).__name__}: two images share the id {img_id!r}: '
                                     f'{found[img_id]} and {full}; keep one of them.')
                found[img_id] = full
        return found

    def load_data_list(self):
        """Scan the folders, pair images with label maps and keep the few-shot subset."""
        self._check_folders()
        img_dir = Path(self.data_prefix['img_path'])
        seg_dir = Path(self.data_prefix['seg_map_path'])
        images = self._scan_images(img_dir)
        if not images:
            raise ValueError(
                f'{type(self).__name__}: the split is empty: no image ending in '
                f'{" or ".join(self.img_suffix)} in {img_dir} (label maps expected in {seg_dir} '
                f'ending in {self.seg_map_suffix}). Put the images there, or fix data_root / the '
                f'split / img_suffix. Expected layout:\n{self.expected_layout()}\n'
                f'{self.setup_hint()}')
        missing = [(p, seg_dir / f'{i}{self.seg_map_suffix}') for i, p in images.items()
                   if not (seg_dir / f'{i}{self.seg_map_suffix}').is_file()]
        if missing:
            img, seg = missing[0]
            more = f' ({len(missing) - 1} more images lack one too)' if len(missing) > 1 else ''
            raise FileNotFoundError(
                f'{type(self).__name__}: image {img} has no label map: expected {seg}{more}. '
                f'Every image needs a label map with the same id ending in '
                f'{self.seg_map_suffix} in {seg_dir}; add it or remove the image.')
        ids = self._select_ids(sorted(images))
        meta = self._metainfo
        data_list = []
        for img_id in ids:
            info = dict(img_path=str(images[img_id]),
                        seg_map_path=str(seg_dir / f'{img_id}{self.seg_map_suffix}'),
                        img_id=img_id, num_classes=meta['num_classes'],
                        label_shift=meta['label_shift'])
            info.update(self._extra_info(img_id))
            data_list.append(info)
        return data_list

    def _extra_info(self, img_id):
        """Extra keys for one sample's data info (subclasses override)."""
        return {}

    # ----------------------------------------------------------------- few shot
    def _select_ids(self, all_ids):
        if self.subset_file is not None:
            wanted = read_subset_file(self.subset_file)
            known = set(all_ids)
            unknown = [i for i in wanted if i not in known]
            if unknown:
                shown = ', '.join(unknown[:10]) + (' ...' if len(unknown) > 10 else '')
                raise ValueError(
                    f'subset_file {self.subset_file} names {len(unknown)} id(s) that are not in '
                    f'{self.data_prefix["img_path"]}: {shown}. Ids are image file names without '
                    f'the suffix {self.img_suffix[0]} (e.g. {sorted(known)[0]!r}). Fix or delete '
                    f'those lines, or point subset_file at the list made for this data set and '
                    f'split.')
            if len(set(wanted)) != len(wanted):
                twice = sorted({i for i in wanted if wanted.count(i) > 1})
                raise ValueError(f'subset_file {self.subset_file} lists some ids twice: '
                                 f'{", ".join(twice[:10])}; keep each id once.')
            if self.num_shots not in (None, -1):
                if self.num_shots > len(wanted):
                    raise ValueError(f'num_shots={self.num_shots} but subset_file '
                                     f'{self.subset_file} lists only {len(wanted)} ids; lower '
                                     f'num_shots to at most {len(wanted)} or list more ids.')
                wanted = wanted[:self.num_shots]
            self._subset_ids = list(wanted)
            return list(wanted)
        if self.num_shots in (None, -1):
            self._subset_ids = None
            return list(all_ids)
        if self.num_shots > len(all_ids):
            raise ValueError(
                f'{type(self).__name__}: num_shots={self.num_shots} must be in '
                f'[1, {len(all_ids)}]: {self.data_prefix["img_path"]} holds only {len(all_ids)} '
                f'images. What to do: use num_shots <= {len(all_ids)} (or -1 to keep them '
                f'all), or point data_root at the full data set.')
        ids = select_few_shot(all_ids, self.num_shots, self.subset_seed)
        self._subset_ids = list(ids)
        return ids

    @property
    def subset_ids(self):
        """The kept ids (list[str]) when a subset was asked for, else ``None``."""
        self.full_init()
        return None if self._subset_ids is None else list(self._subset_ids)

    def save_subset_ids(self, path):
        """Write the kept ids, one per line, to ``path`` (atomically); returns ``path`` or None
        when no subset was asked for. The file can be given back as ``subset_file``."""
        ids = self.subset_ids
        if ids is None:
            return None
        write_text_atomic(path, '\n'.join(ids) + '\n')
        return Path(path)

    def write_subset(self, work_dir):
        """Write the kept ids to ``<work_dir>/subset_ids.txt``; returns the path or None."""
        return self.save_subset_ids(Path(work_dir) / self.SUBSET_FILENAME)
