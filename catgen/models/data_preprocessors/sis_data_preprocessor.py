"""SISDataPreprocessor: batch, normalise images, one-hot label maps (docs/conventions.md)."""
from collections.abc import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from catgen.registry import MODELS


@MODELS.register_module()
class SISDataPreprocessor(BaseDataPreprocessor):
    """Turn a ``pseudo_collate``d batch into model inputs.

    Input: ``{'inputs': {'img': list[uint8 Tensor[3, H, W]], 'label': list[int64 Tensor[H, W]],
    ['edges': list[uint8 Tensor[H, W]]]}, 'data_samples': list[SISDataSample]}`` (stacked tensors
    ``[B, ...]`` are accepted too).

    Output::

        {'inputs': {'img':   float32 Tensor[B, 3, H, W] in [-1, 1],   ((img - mean) / std)
                    'label': int64 Tensor[B, H, W] (channel space, ignore pixels kept as is),
                    'seg':   float32 Tensor[B, num_classes (+ 1), H, W] one-hot
                             (+ the instance edge map as the last channel, see below),
                    'edges': float32 Tensor[B, 1, H, W] in {0, 1}  (only if given),
                    'scribbles': int64 Tensor[B, H, W]  (a sparse label map, only if given:
                                 ``SimulateScribbles``),
                    'scribble_seg': float32 Tensor[B, num_classes, H, W] its one-hot
                                 (all-zero where unlabelled)},
         'data_samples': list[SISDataSample]}

    ``img`` is left out when the batch has none (synthesis from label maps alone).

    With ``instance_edges=True`` (SPADE's default where the data set has instance maps:
    Cityscapes, COCO-Stuff; the official ``--no_instance`` off) the edge map is concatenated
    to ``seg`` as one channel after the ``num_classes`` one-hot channels, as the official
    ``preprocess_input`` does: generator and discriminator then read ``num_classes + 1``
    channels. ``extra_label_channels`` (1, else 0) tells the synthesizer to build its networks
    for it (:func:`~catgen.models.synthesizers.base_synthesizer.build_network`); nothing is
    written by hand.

    Args:
        num_classes: channels, the don't-care channel 0 included (e.g. 151 for ADE20K).
        ignore_index: a label value whose pixels get an all-zero one-hot vector (255).
        mean, std: a float or one per RGB channel; 127.5 maps ``[0, 255]`` to ``[-1, 1]``.
        non_blocking: as MMEngine's BaseDataPreprocessor.
        instance_edges: concatenate each sample's instance edge map (``inputs['edges']``, from
            ``LoadSISAnnotations(with_instance=True)``) to ``seg``; a batch without it is an
            error.

    A label id outside ``[0, num_classes)`` that is not ``ignore_index`` raises ValueError
    naming the sample's ``seg_map_path``.
    """

    def __init__(self, num_classes=None, ignore_index=255, mean=127.5, std=127.5,
                 non_blocking=False, instance_edges=False):
        super().__init__(non_blocking=non_blocking)
        if num_classes is None:
            raise ValueError(
                'SISDataPreprocessor needs num_classes (label channels, don\'t care included). '
                'The tools (train.py, test.py, synthesize.py, init_synthesizer) fill it in from '
                'the training set\'s classes; when they cannot (no data at hand, a data set '
                'without declared classes), set model.data_preprocessor.num_classes in the '
                'config.')
        if int(num_classes) < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.instance_edges = bool(instance_edges)
        #: channels of ``seg`` after the ``num_classes`` one-hot channels (the edge map)
        self.extra_label_channels = 1 if self.instance_edges else 0
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        for name, t in (('mean', mean), ('std', std)):
            if t.shape[0] not in (1, 3):
                raise ValueError(f'{name} must be a float or 3 values (RGB), got {t.flatten()}')
        if (std == 0).any():
            raise ValueError('std must not be 0')
        self.register_buffer('mean', mean, persistent=False)
        self.register_buffer('std', std, persistent=False)

    @staticmethod
    def _stack(x, key, ndim):
        """Stack a list of per-sample tensors (``ndim`` dims each) into one batch tensor."""
        if isinstance(x, torch.Tensor):
            if x.dim() == ndim:
                x = x.unsqueeze(0)
            if x.dim() != ndim + 1:
                raise ValueError(f'inputs["{key}"] must be {ndim}-D per sample, got a '
                                 f'{x.dim()}-D tensor')
            return x
        if not isinstance(x, Sequence) or len(x) == 0:
            raise ValueError(f'inputs["{key}"] must be a non-empty list of tensors')
        shapes = {tuple(t.shape) for t in x}
        if len(shapes) > 1:
            raise ValueError(f'inputs["{key}"] of one batch must share one size, got '
                             f'{sorted(shapes)}; add Resize / RandomCrop to the pipeline.')
        if any(t.dim() != ndim for t in x):
            raise ValueError(f'inputs["{key}"] must be {ndim}-D per sample, got '
                             f'{next(iter(shapes))}')
        return torch.stack(list(x))

    def _check_labels(self, label, data_samples):
        bad = (label < 0) | ((label >= self.num_classes) & (label != self.ignore_index))
        if not bad.any():
            return
        i = int(bad.flatten(1).any(1).nonzero()[0])
        ids = torch.unique(label[i][bad[i]]).tolist()
        shown = ', '.join(map(str, ids[:10])) + (' ...' if len(ids) > 10 else '')
        path = None
        if data_samples is not None and i < len(data_samples):
            path = data_samples[i].metainfo.get('seg_map_path')
        who = path if path is not None else f'sample {i} of the batch'
        raise ValueError(f'Label map {who} has ids {shown} outside [0, {self.num_classes}) '
                         f'(ignore_index={self.ignore_index}); num_classes of the data '
                         f'preprocessor must match the data set (don\'t-care channel included).')

    def one_hot(self, label):
        """int64 Tensor[B, H, W] -> float32 Tensor[B, num_classes, H, W] (all-zero vectors at
        ``ignore_index``)."""
        valid = label != self.ignore_index
        index = torch.where(valid, label, torch.zeros_like(label))
        seg = torch.zeros((label.shape[0], self.num_classes, *label.shape[1:]),
                          dtype=torch.float32, device=label.device)
        seg.scatter_(1, index.unsqueeze(1), 1.0)
        return seg * valid.unsqueeze(1)

    def forward(self, data, training=False):
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples')
        if 'label' not in inputs:
            raise KeyError('SISDataPreprocessor needs inputs["label"]; is PackSISInputs last in '
                           'the pipeline and LoadSISAnnotations in it?')
        label = self._stack(inputs['label'], 'label', 2).long()
        self._check_labels(label, data_samples)
        out = {}
        if 'img' in inputs and inputs['img'] is not None:
            img = self._stack(inputs['img'], 'img', 3)
            if img.shape[1] != 3:
                raise ValueError(f'inputs["img"] must have 3 channels, got {tuple(img.shape)}')
            if img.shape[0] != label.shape[0] or img.shape[2:] != label.shape[1:]:
                raise ValueError(f'images {tuple(img.shape)} and label maps {tuple(label.shape)} '
                                 f'of one batch do not match in batch size or H, W')
            out['img'] = (img.float() - self.mean) / self.std
        out['label'] = label
        seg = self.one_hot(label)
        if inputs.get('scribbles') is not None:
            scribbles = self._stack(inputs['scribbles'], 'scribbles', 2).long()
            if scribbles.shape != label.shape:
                raise ValueError(f'scribble maps {tuple(scribbles.shape)} and label maps '
                                 f'{tuple(label.shape)} of one batch differ in shape')
            self._check_labels(scribbles, data_samples)
            out['scribbles'] = scribbles
            out['scribble_seg'] = self.one_hot(scribbles)
        if inputs.get('edges') is not None:
            edges = self._stack(inputs['edges'], 'edges', 2)
            if edges.shape[0] != label.shape[0] or edges.shape[1:] != label.shape[1:]:
                raise ValueError(f'edge maps {tuple(edges.shape)} and label maps '
                                 f'{tuple(label.shape)} of one batch do not match in batch size '
                                 f'or H, W')
            out['edges'] = edges.to(device=seg.device, dtype=torch.float32).unsqueeze(1)
        elif self.instance_edges:
            raise KeyError(
                'SISDataPreprocessor(instance_edges=True) needs every sample\'s instance edge map '
                '(inputs["edges"]): set with_instance=True in the pipeline\'s LoadSISAnnotations '
                '(train, val and test pipelines) on a data set with instance maps (Cityscapes, '
                'COCO-Stuff), or set model.data_preprocessor.instance_edges=False.')
        if self.instance_edges:
            seg = torch.cat([seg, out['edges']], dim=1)
        out['seg'] = seg
        return {'inputs': out, 'data_samples': data_samples}
