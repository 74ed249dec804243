"""Data sets, few-shot subsets and transforms (registered in catgen.registry.DATASETS /
TRANSFORMS). See docs/datasets.md."""
from . import transforms  # noqa: F401  (registers the transforms)
from .ade20k import ADE20KDataset
from .class_names import build_dataset, class_names_of, real_class_names
from .base_sis_dataset import BaseSISDataset
from .cityscapes import CityscapesDataset
from .coco_stuff import COCOStuffDataset
from .few_shot import select_few_shot
from .folder_dataset import FolderSISDataset
from .image_folder_dataset import ImageFolderDataset
from .synthscenes_dataset import SynthScenesDataset

__all__ = ['BaseSISDataset', 'FolderSISDataset', 'ImageFolderDataset', 'SynthScenesDataset',
           'ADE20KDataset', 'COCOStuffDataset', 'CityscapesDataset', 'select_few_shot',
           'build_dataset', 'class_names_of', 'real_class_names']
