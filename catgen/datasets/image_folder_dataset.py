"""ImageFolderDataset: images without label maps, for unconditional generators (StyleGAN2)."""
from pathlib import Path

from catgen.registry import DATASETS

from .base_sis_dataset import BaseSISDataset


@DATASETS.register_module()
class ImageFolderDataset(BaseSISDataset):
    """Every image under ``<data_root>/<img_path>`` (sub-folders scanned, hidden files skipped)::

        <data_root>/<img_path>/<id>.png|.jpg ...

    The few-shot adaptation setting: ``num_shots=10`` keeps 10 images chosen by
    :func:`catgen.datasets.few_shot.select_few_shot` (nested across shot counts, seeded by
    ``subset_seed``), or the ids of ``subset_file``; the kept ids are written to the work dir by
    :class:`~catgen.engine.hooks.SaveSubsetIdsHook`. Each data info holds ``img_path`` and
    ``img_id``; the pipeline loads it with ``LoadSISImageFromFile`` and packs it with
    ``PackSISInputs`` (no label map), and :class:`~catgen.models.data_preprocessors.
    ImageDataPreprocessor` batches it.

    Args:
        data_root: the data set's folder.
        img_path: the image folder, relative to ``data_root``.
        img_suffix: a suffix or a tuple of suffixes.
        **kwargs: as :class:`BaseSISDataset` (``num_shots``, ``subset_seed``, ``subset_file``,
            ``pipeline``, ...).
    """

    METAINFO = dict(classes=(), dontcare_index=0, label_shift=0)

    def __init__(self, data_root='', img_path='', img_suffix=('.png', '.jpg', '.jpeg'),
                 **kwargs):
        kwargs.pop('data_prefix', None)
        super().__init__(data_root=data_root, data_prefix=dict(img_path=img_path),
                         img_suffix=img_suffix, **kwargs)

    @classmethod
    def _complete_metainfo(cls, meta):
        meta['classes'] = tuple(meta.get('classes', ()))
        meta['num_classes'] = 0
        meta['palette'] = []
        return meta

    def expected_layout(self):
        root = self.data_root or '<data_root>'
        return f'{self.data_prefix["img_path"] or root}/\n└── <id>{self.img_suffix[0]}  ...'

    def setup_hint(self):
        return ('For the SynthScenes domains run: python tools/prepare_synthscenes.py && '
                'python tools/prepare_synthscenes_styles.py (docs/synthscenes.md).')

    def _check_folders(self):
        if self.data_root and not Path(self.data_root).is_dir():
            raise self._missing('data root', self.data_root)
        if not Path(self.data_prefix['img_path']).is_dir():
            raise self._missing('image folder', self.data_prefix['img_path'])

    def load_data_list(self):
        """Scan the image folder and keep the few-shot subset."""
        self._check_folders()
        img_dir = Path(self.data_prefix['img_path'])
        images = self._scan_images(img_dir)
        if not images:
            raise ValueError(
                f'{type(self).__name__}: no image ending in {" or ".join(self.img_suffix)} in '
                f'{img_dir}. Put the images there or fix data_root / img_path / img_suffix.\n'
                f'{self.setup_hint()}')
        ids = self._select_ids(sorted(images))
        return [dict(img_path=str(images[i]), img_id=i) for i in ids]
