"""ImageDataPreprocessor: batch and normalise images for unconditional generators."""
import torch

from catgen.registry import MODELS

from .sis_data_preprocessor import SISDataPreprocessor


@MODELS.register_module()
class ImageDataPreprocessor(SISDataPreprocessor):
    """Turn a ``pseudo_collate``d batch of images (no label maps) into model inputs.

    Output::

        {'inputs': {'img': float32 Tensor[B, 3, H, W] in [-1, 1],
                    'seg': float32 Tensor[B, 0, H, W]},
         'data_samples': list[SISDataSample]}

    ``seg`` is the empty label map of an unconditional model: zero channels, so that the
    synthesizer and the transfer strategies, which read the batch size, the image size and the
    device from it and hand it to ``G(seg, z)`` / ``D(img, seg)``, work unchanged (an
    unconditional network ignores it). ``num_classes`` is 0.

    Args:
        mean, std: a float or one per RGB channel; 127.5 maps ``[0, 255]`` to ``[-1, 1]``.
        non_blocking: as MMEngine's BaseDataPreprocessor.
        size: ``(H, W)`` of ``seg`` when a batch has no images (sampling from noise alone).
        num_classes: must be 0 (kept for the tools, which fill it in for label-map data).
    """

    def __init__(self, mean=127.5, std=127.5, non_blocking=False, size=None, num_classes=0):
        if num_classes:
            raise ValueError(f'ImageDataPreprocessor is for unconditional models (no label '
                             f'map), got num_classes={num_classes}; use SISDataPreprocessor.')
        super().__init__(num_classes=1, mean=mean, std=std, non_blocking=non_blocking)
        self.num_classes = 0
        self.size = None if size is None else tuple(size)

    def forward(self, data, training=False):
        data = self.cast_data(data)
        inputs = data['inputs']
        out = {}
        if inputs.get('img') is not None:
            img = self._stack(inputs['img'], 'img', 3)
            if img.shape[1] != 3:
                raise ValueError(f'inputs["img"] must have 3 channels, got {tuple(img.shape)}')
            out['img'] = (img.float() - self.mean) / self.std
            b, size, device = img.shape[0], img.shape[2:], out['img'].device
        else:
            samples = data.get('data_samples') or []
            if not samples or self.size is None:
                raise KeyError('ImageDataPreprocessor needs inputs["img"] (is PackSISInputs last '
                               'in the pipeline?), or data samples and size=(H, W) to sample '
                               'from noise alone.')
            b, size, device = len(samples), self.size, self.mean.device
        out['seg'] = torch.zeros(b, 0, *size, device=device)
        return {'inputs': out, 'data_samples': data.get('data_samples')}
