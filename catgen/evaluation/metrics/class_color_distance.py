"""Per-class colour distance between generated and real pixels (cheap, no pretrained network)."""
import os.path as osp

import numpy as np
from mmengine.evaluator import BaseMetric
from PIL import Image

from catgen.registry import METRICS
from catgen.utils.io import atomic_write


@METRICS.register_module()
class ClassColorDistance(BaseMetric):
    """Mean over classes of the L2 distance (in 0..255 RGB units) between the mean colour of the
    generated pixels and the mean colour of the real pixels of that class, over the whole
    evaluation set. Also reports the same for the per-class colour standard deviation.

    It says whether each class gets the right colour and contrast, not whether images look real:
    use FID/KID for that. The don't-care channel 0 is skipped.

    Args:
        num_classes: channels of the label space (including don't care).
        save_dir: if set, generated images are also written there as PNG (``<stem>.png``).
        prefix: metric name prefix.
        collect_device: 'cpu' or 'gpu' for gathering results across processes.
    """

    default_prefix = 'color'

    def __init__(self, num_classes, save_dir=None, prefix=None, collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = num_classes
        self.save_dir = save_dir

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            fake = np.asarray(ds['fake_img'] if isinstance(ds, dict) else ds.fake_img)
            if fake.ndim == 4:  # K samples per map: use the first
                fake = fake[0]
            real = np.asarray(ds['gt_img'] if isinstance(ds, dict) else ds.gt_img)
            label = np.asarray(ds['gt_label'] if isinstance(ds, dict) else ds.gt_label)
            stats = np.zeros((2, self.num_classes, 7))  # [fake|real, class, n + sum(3) + sumsq(3)]
            flat = label.reshape(-1)
            keep = (flat > 0) & (flat < self.num_classes)
            for k, img in enumerate((fake, real)):
                px = img.reshape(3, -1).T.astype(np.float64)[keep]
                ids = flat[keep]
                stats[k, :, 0] += np.bincount(ids, minlength=self.num_classes)
                for ch in range(3):
                    stats[k, :, 1 + ch] += np.bincount(ids, px[:, ch], self.num_classes)
                    stats[k, :, 4 + ch] += np.bincount(ids, px[:, ch] ** 2, self.num_classes)
            self.results.append(stats)
            if self.save_dir:
                meta = ds if isinstance(ds, dict) else ds.metainfo  # Evaluator flattens to dicts
                stem = osp.splitext(osp.basename(meta.get('img_path', f'{len(self.results):06d}')))[0]
                with atomic_write(osp.join(self.save_dir, f'{stem}.png')) as tmp:
                    Image.fromarray(fake.transpose(1, 2, 0)).save(tmp, format='PNG')

    def compute_metrics(self, results):
        stats = np.sum(results, axis=0)
        n = stats[:, :, 0]
        present = (n[0] > 0) & (n[1] > 0)
        if not present.any():
            return dict(mean_dist=float('nan'), std_dist=float('nan'), num_classes=0)
        mean = stats[:, present, 1:4] / n[:, present, None]
        var = stats[:, present, 4:7] / n[:, present, None] - mean ** 2
        std = np.sqrt(np.clip(var, 0, None))
        return dict(mean_dist=float(np.linalg.norm(mean[0] - mean[1], axis=-1).mean()),
                    std_dist=float(np.linalg.norm(std[0] - std[1], axis=-1).mean()),
                    num_classes=int(present.sum()))
