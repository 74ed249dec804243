"""CityscapesDataset: leftImg8bit + gtFine ``*_labelIds.png`` (34 label ids, as SPADE/OASIS)."""
from pathlib import Path

from catgen.registry import DATASETS

from .base_sis_dataset import BaseSISDataset

# The 34 label ids 0..33 of cityscapesScripts' labels.py (index = on-disk id = channel; 0 =
# unlabeled = don't care), then "license plate" (id -1 in labels.py, never drawn in
# *_labelIds.png) as the 35th channel, so that num_classes = 35 as in SPADE and OASIS.
CITYSCAPES_CLASSES = (
    'unlabeled', 'ego vehicle', 'rectification border', 'out of roi', 'static', 'dynamic',
    'ground', 'road', 'sidewalk', 'parking', 'rail track', 'building', 'wall', 'fence',
    'guard rail', 'bridge', 'tunnel', 'pole', 'polegroup', 'traffic light', 'traffic sign',
    'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'caravan', 'trailer',
    'train', 'motorcycle', 'bicycle', 'license plate')

CITYSCAPES_PALETTE = [
    [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [111, 74, 0], [81, 0, 81],
    [128, 64, 128], [244, 35, 232], [250, 170, 160], [230, 150, 140], [70, 70, 70],
    [102, 102, 156], [190, 153, 153], [180, 165, 180], [150, 100, 100], [150, 120, 90],
    [153, 153, 153], [153, 153, 153], [250, 170, 30], [220, 220, 0], [107, 142, 35],
    [152, 251, 152], [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70],
    [0, 60, 100], [0, 0, 90], [0, 0, 110], [0, 80, 100], [0, 0, 230], [119, 11, 32],
    [0, 0, 142]]

IMG_SUFFIX = '_leftImg8bit.png'
SEG_SUFFIX = '_gtFine_labelIds.png'
INST_SUFFIX = '_gtFine_instanceIds.png'


@DATASETS.register_module()
class CityscapesDataset(BaseSISDataset):
    """Cityscapes fine annotations::

        <data_root>/                                   e.g. data/cityscapes
        ├── leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
        └── gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
                                        (and _gtFine_instanceIds.png for instance edges)

    Ids are ``<city>/<city>_<seq>_<frame>``. Label ids ``0..33`` are used as is
    (``label_shift=0``, ``0`` = unlabeled = don't care); ``num_classes = 35``.

    Args:
        data_root: the folder above.
        split: ``'train'`` or ``'val'``.
        with_instance_edges: check when listing that every ``*_gtFine_instanceIds.png``
            exists and have the loading read it, as ``LoadSISAnnotations(with_instance=True)``
            does (the way SPADE's configs ask for it); the results dict then gets
            ``instance_edges`` (``np.uint8[H, W]`` in {0, 1}) and :class:`PackSISInputs` passes
            it as ``inputs['edges']``. A missing instance map is an error naming it.
        **kwargs: as :class:`BaseSISDataset`.

    Every data info has ``instance_path`` (the sample's ``*_gtFine_instanceIds.png``: stuff
    pixels hold their label id, thing pixels ``id * 1000 + k``), read only when asked for.
    """

    METAINFO = dict(classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE, dontcare_index=0,
                    label_shift=0)

    def __init__(self, data_root='data/cityscapes', split='train', with_instance_edges=False,
                 **kwargs):
        if split not in ('train', 'val', 'test'):
            raise ValueError(f"CityscapesDataset split must be 'train', 'val' or 'test', "
                             f'got {split!r}')
        self.split = split
        self.with_instance_edges = with_instance_edges
        super().__init__(
            data_root=data_root,
            data_prefix=dict(img_path=f'leftImg8bit/{split}', seg_map_path=f'gtFine/{split}'),
            img_suffix=IMG_SUFFIX, seg_map_suffix=SEG_SUFFIX, **kwargs)

    def _extra_info(self, img_id):
        path = Path(self.data_prefix['seg_map_path']) / f'{img_id}{INST_SUFFIX}'
        if not self.with_instance_edges:
            return dict(instance_path=str(path))
        if not path.is_file():
            raise FileNotFoundError(
                f'CityscapesDataset(with_instance_edges=True): the instance map {path} does not '
                f'exist; unzip gtFine_trainvaltest.zip completely or set '
                f'with_instance_edges=False.')
        return dict(instance_path=str(path), with_instance=True)

    def expected_layout(self):
        return (f'{self.data_root}/\n'
                f'├── leftImg8bit/{self.split}/<city>/<city>_<seq>_<frame>{IMG_SUFFIX}\n'
                f'└── gtFine/{self.split}/<city>/<city>_<seq>_<frame>{SEG_SUFFIX}\n'
                f'                               (and <...>{INST_SUFFIX})')

    def setup_hint(self):
        return ('On a machine with network access, get leftImg8bit_trainvaltest.zip and '
                'gtFine_trainvaltest.zip from https://www.cityscapes-dataset.com and unzip both '
                'into data_root.')
