"""LPIPS diversity: how different the outputs for one label map and different noise are."""
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from catgen.registry import METRICS

from ..lpips_model import LazyLPIPSMixin, LPIPSModel, resolve_backbone_path


def fake_images(ds):
    """The generated images of one predict-mode sample: ``uint8 Tensor[K, 3, H, W]``."""
    fake = ds['fake_img'] if isinstance(ds, dict) else getattr(ds, 'fake_img', None)
    if fake is None:
        raise KeyError('The data sample has no fake_img: the metric needs the synthesizer\'s '
                       'predict-mode outputs (val_evaluator / test_evaluator of a synthesizer).')
    fake = torch.as_tensor(np.asarray(fake) if not torch.is_tensor(fake) else fake)
    if fake.ndim == 3:
        fake = fake[None]
    if fake.ndim != 4 or fake.shape[1] != 3:
        raise ValueError(f'fake_img must be [3, H, W] or [K, 3, H, W], got {tuple(fake.shape)}.')
    return fake


@METRICS.register_module()
class LPIPSDiversity(LazyLPIPSMixin, BaseMetric):
    """Mean LPIPS between the outputs generated for the same label map with different noise.

    For each label map, the synthesizer's ``K = model.num_eval_samples`` outputs (``fake_img``
    ``uint8 [K, 3, H, W]``) give ``K (K - 1) / 2`` pairs; the map's score is the mean LPIPS over
    them, and ``lpips_diversity`` is the mean over maps (higher = more diverse; 0 when the
    generator ignores its noise). LPIPS is computed in :meth:`process`, batch by batch (so
    nothing but one number per map is kept, and ranks share the work), on images in ``[-1, 1]``
    at their own size unless ``resize`` is set (see :mod:`catgen.evaluation.lpips_model`).

    Outputs (with the default prefix): ``diversity/lpips_diversity`` (float) and
    ``diversity/lpips_diversity_maps`` (number of label maps).

    Args:
        net: LPIPS backbone, ``'alex'`` (default, as OASIS and most SIS papers) or ``'vgg'``.
        backbone_path: local torchvision checkpoint of the backbone; ``None``: torchvision's cache
            file (``torch.hub.get_dir()/checkpoints/alexnet-owt-7be5be79.pth`` for AlexNet).
            Checked when the metric is built.
        resize: ``None`` or an int / ``(h, w)`` to resize images to before LPIPS.
        batch_size: images per backbone forward.
        device: where LPIPS runs; ``None``: CUDA when available, else CPU.
        prefix: metric name prefix (default ``'diversity'``).
        collect_device: ``'cpu'`` or ``'gpu'`` for gathering results across processes.
        segmenter: ``dict(config=..., checkpoint=...)`` of an mmseg segmenter: measure the
            distance in the LPIPS form over ITS features instead
            (:class:`~catgen.evaluation.segmenter_lpips.SegmenterLPIPS`; no ImageNet weights
            needed, not LPIPS values); the outputs are then named
            ``lpips_diversity_<name>`` (e.g. ``lpips_diversity_seg-fcn_synthscenes-source``).
    """

    default_prefix = 'diversity'

    def __init__(self, net='alex', backbone_path=None, resize=None, batch_size=32, device=None,
                 prefix=None, collect_device='cpu', segmenter=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.net = net
        self.segmenter = None if segmenter is None else dict(segmenter)
        self.name = 'lpips_diversity'
        self.resize = resize
        self.batch_size = batch_size
        self.device = device
        self._model = None
        if self.segmenter is None:
            self.backbone_path = resolve_backbone_path(net, backbone_path)  # fail early
        else:
            from catgen.evaluation.segmenter_lpips import SegmenterLPIPS
            self._model = SegmenterLPIPS(**self.segmenter, batch_size=batch_size,
                                         device=device or 'cpu')
            self.name = f'lpips_diversity_{self._model.name}'

    def process(self, data_batch, data_samples):
        fakes = [fake_images(ds) for ds in data_samples]
        if not fakes:
            return
        small = [f.shape[0] for f in fakes if f.shape[0] < 2]
        if small:
            raise ValueError(
                f'LPIPSDiversity needs at least 2 generated images per label map, got '
                f'{small[0]}: set model.num_eval_samples=K (K >= 2, e.g. 10) in the config so '
                f'that the synthesizer draws K noises per map.')
        emb = self.model.embed(torch.cat(fakes))
        start = 0
        for fake in fakes:
            k = fake.shape[0]
            d = LPIPSModel.pdist(emb[start:start + k])
            start += k
            iu = torch.triu_indices(k, k, offset=1)
            self.results.append(float(d[iu[0], iu[1]].mean()))

    def compute_metrics(self, results):
        if not results:
            print_log('LPIPSDiversity: no samples were processed.', logger='current')
            return {self.name: float('nan'), f'{self.name}_maps': 0}
        return {self.name: float(np.mean(results)), f'{self.name}_maps': len(results)}
