"""COCOStuffDataset: the COCO-Stuff 164k layout (182 on-disk ids, as SPADE uses it)."""
from pathlib import Path

from catgen.registry import DATASETS

from .base_sis_dataset import BaseSISDataset

# The 182 COCO-Stuff label names (91 COCO thing ids, the 11 never annotated included, then the
# 91 stuff ids), index = on-disk id; the don't-care name first: index = channel.
# Colours as in MMSegmentation's COCOStuffDataset; the 11 unused thing ids are grey.
COCO_STUFF_CLASSES = (
    'unlabeled', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
    'boat', 'traffic light', 'fire hydrant', 'street sign', 'stop sign', 'parking meter', 'bench',
    'bird', 'cat', 'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'hat',
    'backpack', 'umbrella', 'shoe', 'eye glasses', 'handbag', 'tie', 'suitcase', 'frisbee', 'skis',
    'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'plate', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
    'donut', 'cake', 'chair', 'couch', 'potted plant', 'bed', 'mirror', 'dining table', 'window',
    'desk', 'toilet', 'door', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'blender', 'book', 'clock', 'vase',
    'scissors', 'teddy bear', 'hair drier', 'toothbrush', 'hair brush', 'banner', 'blanket',
    'branch', 'bridge', 'building-other', 'bush', 'cabinet', 'cage', 'cardboard', 'carpet',
    'ceiling-other', 'ceiling-tile', 'cloth', 'clothes', 'clouds', 'counter', 'cupboard',
    'curtain', 'desk-stuff', 'dirt', 'door-stuff', 'fence', 'floor-marble', 'floor-other',
    'floor-stone', 'floor-tile', 'floor-wood', 'flower', 'fog', 'food-other', 'fruit',
    'furniture-other', 'grass', 'gravel', 'ground-other', 'hill', 'house', 'leaves', 'light',
    'mat', 'metal', 'mirror-stuff', 'moss', 'mountain', 'mud', 'napkin', 'net', 'paper',
    'pavement', 'pillow', 'plant-other', 'plastic', 'platform', 'playingfield', 'railing',
    'railroad', 'river', 'road', 'rock', 'roof', 'rug', 'salad', 'sand', 'sea', 'shelf',
    'sky-other', 'skyscraper', 'snow', 'solid-other', 'stairs', 'stone', 'straw',
    'structural-other', 'table', 'tent', 'textile-other', 'towel', 'tree', 'vegetable',
    'wall-brick', 'wall-concrete', 'wall-other', 'wall-panel', 'wall-stone', 'wall-tile',
    'wall-wood', 'water-other', 'waterdrops', 'window-blind', 'window-other', 'wood',
)

COCO_STUFF_PALETTE = [
    [0, 0, 0], [0, 192, 64], [0, 192, 64], [0, 64, 96], [128, 192, 192], [0, 64, 64], [0, 192,
    224], [0, 192, 192], [128, 192, 64], [0, 192, 96], [128, 192, 64], [128, 32, 192], [128, 128,
    128], [0, 0, 224], [0, 0, 64], [0, 160, 192], [128, 0, 96], [128, 0, 192], [0, 32, 192], [128,
    128, 224], [0, 0, 192], [128, 160, 192], [128, 128, 0], [128, 0, 32], [128, 32, 0], [128, 0,
    128], [128, 128, 128], [64, 128, 32], [0, 160, 0], [128, 128, 128], [128, 128, 128], [0, 0, 0],
    [192, 128, 160], [0, 32, 0], [0, 128, 128], [64, 128, 160], [128, 160, 0], [0, 128, 0], [192,
    128, 32], [128, 96, 128], [0, 0, 128], [64, 0, 32], [0, 224, 128], [128, 0, 0], [192, 0, 160],
    [128, 128, 128], [0, 96, 128], [128, 128, 128], [64, 0, 160], [128, 224, 128], [128, 128, 64],
    [192, 0, 32], [128, 96, 0], [128, 0, 192], [0, 128, 32], [64, 224, 0], [0, 0, 64], [128, 128,
    160], [64, 96, 0], [0, 128, 192], [0, 128, 160], [192, 224, 0], [0, 128, 64], [128, 128, 32],
    [192, 32, 128], [0, 64, 192], [128, 128, 128], [0, 0, 32], [128, 128, 128], [128, 128, 128],
    [64, 160, 128], [128, 128, 128], [128, 64, 64], [128, 0, 160], [64, 32, 128], [128, 192, 192],
    [0, 0, 160], [192, 160, 128], [128, 192, 0], [128, 0, 96], [192, 32, 0], [128, 64, 128], [64,
    128, 96], [128, 128, 128], [64, 160, 0], [0, 64, 0], [192, 128, 224], [64, 32, 0], [0, 192,
    128], [64, 128, 224], [192, 160, 0], [128, 128, 128], [0, 192, 0], [192, 128, 96], [192, 96,
    128], [0, 64, 128], [64, 0, 96], [64, 224, 128], [128, 64, 0], [192, 0, 224], [64, 96, 128],
    [128, 192, 128], [64, 0, 224], [192, 224, 128], [128, 192, 64], [192, 0, 96], [192, 96, 0],
    [128, 64, 192], [0, 128, 96], [0, 224, 0], [64, 64, 64], [128, 128, 224], [0, 96, 0], [64, 192,
    192], [0, 128, 224], [128, 224, 0], [64, 192, 64], [128, 128, 96], [128, 32, 128], [64, 0,
    192], [0, 64, 96], [0, 160, 128], [192, 0, 64], [128, 64, 224], [0, 32, 128], [192, 128, 192],
    [0, 64, 224], [128, 160, 128], [192, 128, 0], [128, 64, 32], [128, 32, 64], [192, 0, 128], [64,
    192, 32], [0, 160, 64], [64, 0, 0], [192, 192, 160], [0, 32, 64], [64, 128, 128], [64, 192,
    160], [128, 160, 64], [64, 128, 0], [192, 192, 32], [128, 96, 192], [64, 0, 128], [64, 64, 32],
    [0, 224, 192], [192, 0, 0], [192, 64, 160], [0, 96, 192], [192, 128, 128], [64, 64, 160], [128,
    224, 192], [192, 128, 64], [192, 64, 32], [128, 96, 64], [192, 0, 192], [0, 192, 32], [64, 224,
    64], [64, 0, 64], [128, 192, 160], [64, 96, 64], [64, 128, 192], [0, 192, 160], [192, 224, 64],
    [64, 128, 64], [128, 192, 32], [192, 32, 192], [64, 64, 192], [0, 64, 32], [64, 160, 192],
    [192, 64, 64], [128, 64, 160], [64, 32, 192], [192, 192, 192], [0, 64, 160], [192, 160, 192],
    [192, 192, 0], [128, 64, 96], [192, 32, 64], [192, 64, 128], [64, 192, 96], [64, 160, 64], [64,
    64, 0]]

SPLITS = {'train': 'train2017', 'val': 'val2017', 'train2017': 'train2017', 'val2017': 'val2017'}


@DATASETS.register_module()
class COCOStuffDataset(BaseSISDataset):
    """COCO-Stuff 164k::

        <data_root>/                        e.g. data/coco_stuff164k
        ├── images/train2017/000000000009.jpg ...
        ├── images/val2017/000000000139.jpg ...
        ├── annotations/train2017/000000000009.png ...   uint8 ids 0..181, 255 = unlabeled
        ├── annotations/val2017/000000000139.png ...
        └── instances/{train2017,val2017}/<id>.png   (optional: SPADE's instance maps)

    (``annotations`` holds the PNGs of ``stuffthingmaps_trainval2017.zip``.) On-disk id ``k``
    becomes channel ``k + 1`` and ``255`` becomes ``0`` (``label_shift=1``);
    ``num_classes = 183``. MMSegmentation's converted ``*_labelTrainIds.png`` (0..170) are a
    different id space: do not point ``seg_map_suffix`` at them.

    Instance maps are not part of the COCO-Stuff downloads. SPADE makes them with its
    ``datasets/coco_generate_instance_map.py`` (needs ``pycocotools`` and COCO's
    ``annotations_trainval2017.zip``): the label map with every thing polygon of
    ``instances_<split>.json`` painted over it with a running instance number, so that both
    stuff-class boundaries and thing-instance boundaries are edges. Put those PNGs (same stem as
    the label map) in ``instances/<split>/``; they are read only with
    ``LoadSISAnnotations(with_instance=True)`` (SPADE's COCO-Stuff config).

    Args:
        data_root: the folder above.
        split: ``'train2017'`` / ``'val2017'`` (or ``'train'`` / ``'val'``).
        instance_dir: folder of the instance maps under ``data_root``, one sub-folder per split.
        **kwargs: as :class:`BaseSISDataset`.
    """

    METAINFO = dict(classes=COCO_STUFF_CLASSES, palette=COCO_STUFF_PALETTE, dontcare_index=0,
                    label_shift=1)

    def __init__(self, data_root='data/coco_stuff164k', split='train2017',
                 instance_dir='instances', **kwargs):
        if split not in SPLITS:
            raise ValueError(f'COCOStuffDataset split must be one of {sorted(SPLITS)}, '
                             f'got {split!r}')
        self.split = SPLITS[split]
        self.instance_dir = instance_dir
        super().__init__(
            data_root=data_root,
            data_prefix=dict(img_path=f'images/{self.split}',
                             seg_map_path=f'annotations/{self.split}'),
            img_suffix='.jpg', seg_map_suffix='.png', **kwargs)

    def _extra_info(self, img_id):
        # data_root is already joined onto data_prefix; the instance folder sits beside it
        return dict(instance_path=str(
            Path(self.data_root or '') / self.instance_dir / self.split / f'{img_id}.png'))

    def expected_layout(self):
        return (f'{self.data_root}/\n'
                f'├── images/train2017/*.jpg\n'
                f'├── images/val2017/*.jpg\n'
                f'├── annotations/train2017/*.png   (uint8 ids 0..181, 255 = unlabeled)\n'
                f'├── annotations/val2017/*.png\n'
                f'└── {self.instance_dir}/{{train2017,val2017}}/*.png   (instance edges only)')

    def setup_hint(self):
        return ('On a machine with network access, get train2017.zip and val2017.zip (COCO '
                'images) and stuffthingmaps_trainval2017.zip (COCO-Stuff); unzip them into '
                'images/ and annotations/.')
