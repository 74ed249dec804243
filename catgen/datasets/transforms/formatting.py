"""PackSISInputs: the last transform, from a results dict to model inputs + a data sample."""
import numpy as np
import torch

from catgen.registry import TRANSFORMS
from catgen.structures import SISDataSample


@TRANSFORMS.register_module()
class PackSISInputs:
    """Pack a results dict as ``{'inputs': {...}, 'data_samples': SISDataSample}``.

    ``inputs``:
      - ``img``: ``uint8 Tensor[3, H, W]`` (from ``results['img']``, RGB);
      - ``label``: ``int64 Tensor[H, W]`` channel space (from ``results['gt_seg_map']``);
      - ``edges``: ``uint8 Tensor[H, W]`` in {0, 1}, only when ``results`` has
        ``instance_edges`` (Cityscapes with ``with_instance_edges=True``);
      - ``scribbles``: ``int64 Tensor[H, W]``, only when ``results`` has ``gt_scribbles``
        (``SimulateScribbles``: a sparse label map, 255 where unlabelled).
    A key whose source is absent is left out (e.g. no ``img`` when synthesising from a label
    map alone).

    The data sample's metainfo holds the ``meta_keys`` found in ``results``.
    """

    DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'flip',
                         'sample_idx')

    def __init__(self, meta_keys=DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results):
        inputs = {}
        if 'img' in results:
            img = np.asarray(results['img'])
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f'PackSISInputs expects results["img"] as uint8[H, W, 3], got '
                                 f'{img.dtype}{list(img.shape)} for {results.get("img_path")}')
            inputs['img'] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        if 'gt_seg_map' in results:
            inputs['label'] = torch.from_numpy(
                np.ascontiguousarray(results['gt_seg_map']).astype(np.int64, copy=False))
        if 'gt_scribbles' in results:
            inputs['scribbles'] = torch.from_numpy(
                np.ascontiguousarray(results['gt_scribbles']).astype(np.int64, copy=False))
        if 'instance_edges' in results:
            inputs['edges'] = torch.from_numpy(
                np.ascontiguousarray(results['instance_edges']).astype(np.uint8, copy=False))
        if not inputs:
            raise KeyError('PackSISInputs found neither "img" nor "gt_seg_map" in the results '
                           'dict; put LoadSISImageFromFile / LoadSISAnnotations first.')
        results.setdefault('flip', False)
        meta = {k: results[k] for k in self.meta_keys if k in results}
        return {'inputs': inputs, 'data_samples': SISDataSample(metainfo=meta)}

    transform = __call__

    def __repr__(self):
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
