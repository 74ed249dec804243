"""Saves sample grids (label map | generated | real) on fixed inputs during training."""
import os.path as osp

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from catgen.models.synthesizers.base_synthesizer import to_uint8, unwrap
from catgen.registry import HOOKS
from catgen.visualization import make_sample_grid, save_image


@HOOKS.register_module()
class SampleGridHook(Hook):
    """Every ``interval`` iterations, generate images for the same label maps and noise, and
    save ``<work_dir>/<out_dir>/iter_<n>.png`` (and ``final.png`` after training).

    Rows: coloured label map (none for image-only data: unconditional generators, whose
    samples come from fixed latents), generated image(s) (EMA generator), real image. Columns:
    samples.

    Args:
        interval: iterations between grids.
        num_samples: label maps in the grid (the first ones of the data set).
        num_noises: generated images per label map (rows), each with different fixed noise.
        split: 'val' uses the validation set when there is one, else the training set;
            'train' always uses the training set.
        out_dir: folder under the work dir.
    """

    priority = 'LOW'

    def __init__(self, interval=500, num_samples=8, num_noises=1, split='val', out_dir='samples'):
        self.interval = interval
        self.num_samples = num_samples
        self.num_noises = num_noises
        self.split = split
        self.out_dir = out_dir
        self._batch = None

    def _dataset(self, runner):
        if self.split == 'val':
            try:
                loader = runner.val_dataloader
                return loader.dataset
            except Exception:  # no val loop configured
                pass
        return runner.train_dataloader.dataset

    def before_train(self, runner):
        dataset = self._dataset(runner)
        n = min(self.num_samples, len(dataset))
        self._batch = pseudo_collate([dataset[i] for i in range(n)])
        self._palette = dataset.metainfo.get('palette')

    @torch.no_grad()
    def save_grid(self, runner, name):
        model = unwrap(runner.model)
        was_training = model.training
        model.eval()
        try:
            data = model.data_preprocessor(self._batch, False)
            label, seg = model.conditioning(data['inputs'])
            n = seg.shape[0]
            fakes = [to_uint8(model.synthesize(seg, sample_ids=[1_000_000 * k + i
                                                                for i in range(n)]))
                     for k in range(self.num_noises)]
        finally:
            model.train(was_training)
        grid = make_sample_grid(
            None if label is None else label.cpu().numpy(),
            torch.stack(fakes, 1).cpu().numpy(),
            to_uint8(data['inputs']['img']).cpu().numpy(),
            palette=None if self._palette is None else np.asarray(self._palette, np.uint8))
        path = osp.join(runner.work_dir, self.out_dir, f'{name}.png')
        save_image(grid, path)
        runner.logger.info(f'sample grid saved to {path}')
        return path

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        # one grid per run: only the main process draws (eval mode, no collective calls)
        if self.every_n_train_iters(runner, self.interval) and is_main_process():
            self.save_grid(runner, f'iter_{runner.iter + 1:06d}')

    def after_train(self, runner):
        if is_main_process():
            self.save_grid(runner, 'final')
