"""MMSegSegmenter: a frozen mmsegmentation segmentor from a local config and checkpoint.

One wrapper serves every user of an mmseg model: the segmenter affinity estimator and the
mIoU metric read its per-pixel class logits (``forward``), the feature affinity estimator and
the segmenter FID feature extractor read its backbone (+ neck) features (``feature_maps`` /
``feature_map``).

Images are handed over as mmseg's ``LoadImageFromFile`` reads them (BGR, ``input_order='bgr'``,
the default) and go through the segmentor's own ``data_preprocessor`` (mean/std, ``bgr_to_rgb``).
"""
import os

import torch

from catgen.registry import PRETRAINED
from catgen.utils.cache import FileRef

from .base import FrozenPretrained, check_file, file_or_text

__all__ = ['MMSegSegmenter']

INPUT_ORDERS = ('bgr', 'rgb')


@PRETRAINED.register_module()
class MMSegSegmenter(FrozenPretrained):
    """A frozen mmseg segmentor (``EncoderDecoder``) built offline.

    Args:
        config: path of the mmseg config (``.py``) the checkpoint was trained with, or a config
            dict / :class:`mmengine.Config`.
        checkpoint: path of its local ``.pth`` (an MMEngine checkpoint, ``module.`` prefixes
            allowed); its ``meta.dataset_meta.classes`` name the outputs.
        input_order: ``'bgr'`` (mmseg's ``LoadImageFromFile``; default) or ``'rgb'`` (what the
            segmenter's training pipeline fed it).
        feature_index: which output of ``extract_feat`` :meth:`feature_map` returns: an int
            index, or ``'deepest'`` (the lowest spatial resolution, the last such).
        device: where the network goes (``'cpu'``, ``'cuda'``).

    Attributes:
        classes: list[str] of the K output names (from the checkpoint), or None.
        num_classes: K, the decode head's outputs.

    Raises:
        FileNotFoundError: the checkpoint or config file is missing; says where to put it.
        ValueError: bad ``input_order`` / ``feature_index``, or the checkpoint names another
            number of classes than the head has.
    """

    kind = 'MMSegSegmenter'

    def __init__(self, config, checkpoint, input_order='bgr', feature_index=-1, device='cpu'):
        super().__init__()
        self._check_args(config, checkpoint, input_order, feature_index)
        from catgen.utils.setup_env import init_mmseg_model
        self.model = init_mmseg_model(config, checkpoint, device='cpu')
        self.input_order = input_order
        self.feature_index = feature_index
        meta = getattr(self.model, 'dataset_meta', None) or {}
        head = self.model.decode_head
        self.num_classes = int(getattr(head, 'out_channels', None) or head.num_classes)
        names = meta.get('classes')
        if names is not None and len(names) != self.num_classes:
            raise ValueError(f'The mmseg segmenter {checkpoint} has {self.num_classes} outputs '
                             f'but its dataset_meta names {len(names)} classes; pass class_map=['
                             f'one source class (or None) per output] to the estimator, or fix '
                             f'the checkpoint\'s meta.')
        self.classes = None if names is None else [str(n) for n in names]
        self.key_args = dict(config=config, checkpoint=checkpoint, input_order=input_order,
                             feature_index=feature_index)
        self.freeze()
        self.to(device)

    @staticmethod
    def _check_args(config, checkpoint, input_order, feature_index):
        if config is None or checkpoint is None:
            raise ValueError("An mmseg segmenter needs config=<mmseg config file> and "
                             "checkpoint=<.pth trained with it>, e.g. configs/segmenters/"
                             "fcn_synthscenes-source.py and zoo://fcn_synthscenes-source (the "
                             "model zoo; or a .pth from tools/train_segmenter.py).")
        check_file(checkpoint, 'mmseg segmenter checkpoint',
                   f'Train it with python tools/train_segmenter.py {config} (it writes to '
                   f'work_dirs/segmenters/), or pass the path of an existing .pth.')
        if isinstance(config, (str, os.PathLike)):
            check_file(config, 'mmseg segmenter config',
                       f'Pass the .py config the checkpoint {checkpoint} was trained with.')
        if input_order not in INPUT_ORDERS:
            raise ValueError(f"input_order={input_order!r}: use 'bgr' (mmseg's "
                             f"LoadImageFromFile, the default) or 'rgb' (what the segmenter's "
                             f"training pipeline fed it).")
        if not (feature_index == 'deepest' or isinstance(feature_index, int)):
            raise ValueError(f"feature_index must be 'deepest' or an int index into the "
                             f"backbone/neck outputs, got {feature_index!r}.")

    @classmethod
    def _key_parts(cls, config, checkpoint, input_order='bgr', feature_index=-1, device=None):
        cls._check_args(config, checkpoint, input_order, feature_index)
        return {'config': file_or_text(config), 'checkpoint': FileRef(checkpoint),
                'input_order': input_order, 'feature_index': feature_index}

    # ------------------------------------------------------------------ running
    def _preprocess(self, img):
        """uint8 RGB ``[B, 3, H, W]`` -> (preprocessed inputs, metainfos)."""
        from mmseg.structures import SegDataSample
        h, w = img.shape[-2:]
        x = img[:, [2, 1, 0]] if self.input_order == 'bgr' else img
        samples = [SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                               pad_shape=(h, w))) for _ in range(len(x))]
        data = self.model.data_preprocessor(
            dict(inputs=list(x.to(self.device)), data_samples=samples), False)
        return data['inputs'], [s.metainfo for s in data['data_samples']]

    @torch.no_grad()
    def forward(self, img):
        """Class logits.

        Args:
            img: ``uint8 Tensor[B, 3, H, W]`` RGB, 0..255.

        Returns:
            ``float Tensor[B, K, H, W]``: logits of the K segmenter classes (output ``k`` is
            ``classes[k]``).
        """
        h, w = img.shape[-2:]
        inputs, metas = self._preprocess(img)
        logits = self.model.inference(inputs, metas)
        return logits[..., :h, :w]

    @torch.no_grad()
    def feature_maps(self, img):
        """Every output of the segmentor's ``extract_feat`` (backbone, then neck if any).

        Args:
            img: ``uint8 Tensor[B, 3, H, W]`` RGB.

        Returns:
            list of ``float Tensor[B, C_i, h_i, w_i]``.
        """
        inputs, _ = self._preprocess(img)
        feats = self.model.extract_feat(inputs)
        return [feats] if isinstance(feats, torch.Tensor) else list(feats)

    def feature_map(self, img):
        """The ``feature_index`` output of :meth:`feature_maps`: ``float Tensor[B, C, h, w]``."""
        feats = self.feature_maps(img)
        if self.feature_index == 'deepest':
            areas = [f.shape[-2] * f.shape[-1] for f in feats]
            smallest = min(areas)
            return feats[max(i for i, a in enumerate(areas) if a == smallest)]
        try:
            return feats[self.feature_index]
        except IndexError:
            raise IndexError(f'feature_index={self.feature_index} but the segmentor\'s '
                             f'extract_feat gives {len(feats)} outputs.') from None
