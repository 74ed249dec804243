"""The data sample that travels with each image through catgen's pipeline."""
from mmengine.structures import BaseDataElement


class SISDataSample(BaseDataElement):
    """One semantic-image-synthesis sample.

    Meta keys (``metainfo``): ``img_path``, ``seg_map_path``, ``ori_shape``, ``img_shape``,
    ``flip``, ``sample_idx``. Data fields set by the model's ``val_step`` / ``test_step``:
    ``fake_img`` (``uint8 Tensor[3, H, W]``), ``gt_img`` (``uint8 Tensor[3, H, W]``) and
    ``gt_label`` (``int64 Tensor[H, W]``, channel space).
    """
