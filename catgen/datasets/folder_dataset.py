"""FolderSISDataset: the generic layout for a user's own data set."""
import json
from pathlib import Path

from catgen.registry import DATASETS

from .base_sis_dataset import BaseSISDataset


def read_classes_json(path, section=None, layout_error=None):
    """Read ``{"classes": [...], "palette": [[r, g, b], ...]}`` from ``path`` (or from its
    ``section`` key, e.g. ``"target"``) and return ``(classes, palette_or_None, section_dict)``.

    ``layout_error`` (a callable ``(what, path) -> Exception``) builds the error for a missing file.
    """
    path = Path(path)
    if not path.is_file():
        if layout_error is not None:
            raise layout_error('classes file', path)
        raise FileNotFoundError(f'classes file {path} does not exist')
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f'Cannot parse {path} as JSON ({e}); it should hold '
                         f'{{"classes": [...], "palette": [[r, g, b], ...]}}'
                         f'{" under the key " + repr(section) if section else ""}. Fix the '
                         f'file (or regenerate it with the tool that made the data set).') from e
    where = path.name
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise ValueError(f'{path} has no "{section}" section; keys found: '
                             f'{sorted(data) if isinstance(data, dict) else type(data).__name__}')
        data = data[section]
        where = f'{path.name}["{section}"]'
    if not isinstance(data, dict) or not isinstance(data.get('classes'), list) or \
            not data['classes']:
        raise ValueError(f'{path}: {where} must hold a non-empty "classes" list of names '
                         f'(on-disk ids 0..N-1 in that order)')
    classes = [str(c) for c in data['classes']]
    palette = data.get('palette')
    if palette is not None:
        if len(palette) != len(classes) or \
                any(len(c) != 3 or any(not 0 <= int(x) <= 255 for x in c) for c in palette):
            raise ValueError(f'{path}: {where} "palette" must hold one [r, g, b] triple (0..255) '
                             f'per class: {len(classes)} classes, {len(palette)} colours')
        palette = [[int(x) for x in c] for c in palette]
    return classes, palette, data


def shifted_metainfo(classes, palette, dontcare_name='unlabeled'):
    """Channel-space metainfo for on-disk ids ``0..N-1`` + 255 ignore (``label_shift=1``)."""
    meta = dict(classes=(dontcare_name, *classes), label_shift=1, dontcare_index=0)
    if palette is not None:
        meta['palette'] = [[0, 0, 0], *palette]
    return meta


@DATASETS.register_module()
class FolderSISDataset(BaseSISDataset):
    """A user's data set in the generic layout::

        <data_root>/
        ├── classes.json              {"classes": ["sky", ...], "palette": [[r, g, b], ...]}
        ├── images/<split>/<id>.jpg|.png
        └── annotations/<split>/<id>.png   uint8, ids 0..N-1, 255 = ignore

    On-disk id ``k`` becomes channel ``k + 1`` and ``255`` becomes ``0`` (``label_shift=1``), so
    ``metainfo['classes']`` is ``('unlabeled', *classes)`` and ``num_classes = N + 1``. The palette
    is optional (generated when absent).

    Args:
        data_root: the folder above.
        split: the sub-folder name (``'train'``, ``'val'`` ...).
        classes_file: the classes file, relative to ``data_root``.
        **kwargs: as :class:`BaseSISDataset` (``num_shots``, ``subset_seed``, ``subset_file``,
            ``pipeline``, ``metainfo`` overrides ...).
    """

    def __init__(self, data_root, split='train', img_suffix=('.jpg', '.png'),
                 seg_map_suffix='.png', classes_file='classes.json', metainfo=None, **kwargs):
        self._root = str(data_root)
        self.split = split
        self._img_suffixes = tuple(img_suffix) if isinstance(img_suffix, (list, tuple)) \
            else (img_suffix,)
        if not Path(self._root).is_dir():
            raise self._missing('data root', self._root)
        classes, palette, _ = read_classes_json(Path(self._root) / classes_file,
                                                layout_error=self._missing)
        meta = shifted_metainfo(classes, palette)
        meta.update(metainfo or {})
        super().__init__(
            data_root=self._root,
            data_prefix=dict(img_path=f'images/{split}', seg_map_path=f'annotations/{split}'),
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, metainfo=meta, **kwargs)

    def expected_layout(self):
        sfx = '|'.join(self._img_suffixes)
        return (f'{self._root}/\n'
                f'├── classes.json   {{"classes": [...], "palette": [[r, g, b], ...]}}\n'
                f'├── images/{self.split}/<id>{sfx}\n'
                f'└── annotations/{self.split}/<id>.png   (uint8 ids 0..N-1, 255 = ignore)')
