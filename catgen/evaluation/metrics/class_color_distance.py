"""Per-class colour distance between generated and real pixels (cheap, no pretrained network).

The colour half of :class:`~catgen.evaluation.metrics.AppearanceDistance` (same statistics,
same code), in raw 0..255 units, plus an option to save the generated images.
"""
import os.path as osp

import numpy as np
from PIL import Image

from catgen.registry import METRICS
from catgen.utils.io import atomic_write

from .appearance_distance import AppearanceDistance, sample_images, stats_features


@METRICS.register_module()
class ClassColorDistance(AppearanceDistance):
    """Mean over classes of the L2 distance (in 0..255 RGB units) between the mean colour of the
    generated pixels and the mean colour of the real pixels of that class, over the whole
    evaluation set. Also reports the same for the per-class colour standard deviation.

    It says whether each class gets the right colour and contrast, not whether images look real:
    use FID/KID for that. The don't-care channel 0 is skipped. :class:`AppearanceDistance` adds
    texture and a normalised combined distance.

    Metrics (prefix ``color``): ``mean_dist``, ``std_dist`` (NaN when no class is in both sets)
    and ``num_classes`` (classes present in both).

    Args:
        num_classes: channels of the label space (including don't care).
        save_dir: if set, generated images are also written there as PNG (``<stem>.png``, the
            stem of the sample's ``img_path``).
        prefix: metric name prefix.
        collect_device: 'cpu' or 'gpu' for gathering results across processes.
    """

    default_prefix = 'color'
    texture = False

    def __init__(self, num_classes, save_dir=None, prefix=None, collect_device='cpu'):
        super().__init__(num_classes=num_classes, prefix=prefix, collect_device=collect_device)
        self.save_dir = save_dir

    def process(self, data_batch, data_samples):
        super().process(data_batch, data_samples)
        if not self.save_dir:
            return
        for ds in data_samples:
            (fake,), _ = sample_images(ds, keys=('fake_img',))
            meta = ds if isinstance(ds, dict) else ds.metainfo  # Evaluator flattens to dicts
            stem = osp.splitext(osp.basename(meta.get('img_path', f'{len(self.results):06d}')))[0]
            with atomic_write(osp.join(self.save_dir, f'{stem}.png')) as tmp:
                Image.fromarray(np.ascontiguousarray(fake.transpose(1, 2, 0))).save(
                    tmp, format='PNG')

    def compute_metrics(self, results):
        total = self._summed(results)
        fake, real = stats_features(total[0]), stats_features(total[1])
        present = (fake['n'] > 0) & (real['n'] > 0)
        present[0] = False
        if not present.any():
            return dict(mean_dist=float('nan'), std_dist=float('nan'), num_classes=0)
        mean = np.linalg.norm(fake['mean'][present] - real['mean'][present], axis=-1)
        std = np.linalg.norm(fake['std'][present] - real['std'][present], axis=-1)
        return dict(mean_dist=float(mean.mean()), std_dist=float(std.mean()),
                    num_classes=int(present.sum()))
