"""SynthScenesDataset: reads the embedded procedural data set written by
``tools/prepare_synthscenes.py`` (see /docs/datasets.md)."""
from pathlib import Path

from catgen.registry import DATASETS

from .base_sis_dataset import BaseSISDataset
from .folder_dataset import read_classes_json, shifted_metainfo

DOMAINS = ('source', 'target')


@DATASETS.register_module()
class SynthScenesDataset(BaseSISDataset):
    """One domain and split of SynthScenes::

        <data_root>/
        ├── classes.json     {"name", "settings", "source": {classes, palette, recipes},
        │                     "target": {classes, palette, recipes, kinds, affinity}}
        ├── source/images/{train,val}/000000.png
        ├── source/annotations/{train,val}/000000.png   uint8 ids 0..N-1, 255 = ignore
        ├── target/images/{train,val}/000000.png
        ├── target/annotations/{train,val}/000000.png
        └── target/few_shot/shots_{k}.txt

    Labels follow the folder convention (``label_shift=1``): ``num_classes = N + 1`` and
    ``classes = ('unlabeled', *names)``. ``metainfo`` also holds ``domain`` and, for the target,
    ``kinds`` and ``affinity`` (the ground-truth rows over source classes) when classes.json has
    them.

    Few-shot: with ``domain='target'``, ``split='train'``, ``num_shots=k``, ``subset_seed=0`` and no
    ``subset_file``, the fixed list ``target/few_shot/shots_{k}.txt`` is used when it exists (it
    equals ``select_few_shot(ids, k, 0)``); otherwise the subset is drawn with ``subset_seed``.

    Args:
        data_root: the folder above (default ``'data/synthscenes'``).
        domain: ``'source'`` or ``'target'``.
        split: ``'train'`` or ``'val'``.
        **kwargs: as :class:`BaseSISDataset`.
    """

    def __init__(self, data_root='data/synthscenes', domain='source', split='train',
                 num_shots=None, subset_seed=0, subset_file=None, metainfo=None, **kwargs):
        if domain not in DOMAINS:
            raise ValueError(f"SynthScenesDataset domain must be 'source' or 'target', "
                             f'got {domain!r}; fix domain= in the dataset config.')
        self._root = str(data_root)
        self.domain = domain
        self.split = split
        if not Path(self._root).is_dir():
            raise self._missing('data root', self._root)
        classes, palette, section = read_classes_json(
            Path(self._root) / 'classes.json', section=domain, layout_error=self._missing)
        meta = shifted_metainfo(classes, palette)
        for key in ('kinds', 'affinity'):
            if key in section:
                meta[key] = section[key]
        meta.update(metainfo or {})
        if (subset_file is None and domain == 'target' and split == 'train'
                and num_shots not in (None, -1) and subset_seed == 0):
            fixed = Path(self._root) / 'target' / 'few_shot' / f'shots_{num_shots}.txt'
            if fixed.is_file():
                subset_file = fixed
        super().__init__(
            data_root=self._root,
            data_prefix=dict(img_path=f'{domain}/images/{split}',
                             seg_map_path=f'{domain}/annotations/{split}'),
            img_suffix='.png', seg_map_suffix='.png', num_shots=num_shots,
            subset_seed=subset_seed, subset_file=subset_file, metainfo=meta, **kwargs)
        # set after MMEngine's metainfo parsing, which takes every string value for the path of
        # a meta file and warns "source is not a meta file" when it is not one
        self._metainfo['domain'] = domain

    def expected_layout(self):
        return (f'{self._root}/\n'
                f'├── classes.json\n'
                f'├── {self.domain}/images/{self.split}/000000.png ...\n'
                f'├── {self.domain}/annotations/{self.split}/000000.png ...\n'
                f'└── target/few_shot/shots_{{k}}.txt')

    def setup_hint(self):
        return (f'Make it (seconds, no download) with: '
                f'python tools/prepare_synthscenes.py --out {self._root}')
