"""ProxyMaskHook: before training, fit SIS-UG's proxy-mask centres (k-means) once."""
import os
import os.path as osp

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from catgen.models.synthesizers.base_synthesizer import to_uint8, unwrap
from catgen.registry import HOOKS
from catgen.utils.checkpoint import safe_load
from catgen.visualization import make_sample_grid, save_image
from catgen.visualization.rearrangement_grid import colour_proxy_masks, rearrangement_grid


@HOOKS.register_module()
class ProxyMaskHook(Hook):
    """Fit the k-means centres of a SIS-UG synthesizer before the first iteration.

    Skipped when the model has centres already (a stage-2 model loaded them with
    ``rearranger_checkpoint``; a resumed run has them in its checkpoint). The fit is seeded, so
    every rank computes the same centres; the main process caches them in
    ``<work_dir>/<cache>`` (reused when the model's k-means options match) and writes
    ``proxy_masks.png``: ``num_samples`` random samples (seed 0) above their proxy masks.

    In stage 1 it also saves, every ``interval`` iterations, ``<work_dir>/rearranged/
    iter_<n>.png`` (:func:`~catgen.visualization.rearrangement_grid.rearrangement_grid`).

    Args:
        cache: file name of the cached centres in the work dir.
        num_samples: samples in the pictures.
        interval: iterations between rearrangement grids (0: none).
    """

    priority = 'HIGH'

    def __init__(self, cache='proxy_centres.pth', num_samples=8, interval=1000):
        self.cache = cache
        self.num_samples = int(num_samples)
        self.interval = int(interval)

    def before_train(self, runner):
        model = unwrap(runner.model)
        if getattr(model, 'prior_checkpoint', None) is None and \
                getattr(model, 'rearranger_checkpoint', None) is None:
            raise ValueError('SIS-UG training needs a trained prior: model.prior_checkpoint is '
                             'None, so the proxy masks would cluster the features of random '
                             'weights. Set it to a StyleGAN2 checkpoint (e.g. '
                             'zoo://stylegan2_synthscenes-source).')
        if model.fitted:
            runner.logger.info('SIS-UG proxy-mask centres: loaded with the model')
            return
        cache = osp.join(runner.work_dir, self.cache)
        key = dict(model.kmeans, num_clusters=model.num_clusters,
                   level=model.feature_layers[0])
        if osp.isfile(cache):
            cached = safe_load(cache, map_location='cpu')
            if cached.get('key') == repr(sorted(key.items())):
                model.centres.copy_(cached['centres'])
                runner.logger.info(f'SIS-UG proxy-mask centres read from {cache}')
                return
        stats = model.fit_proxy_masks()
        runner.logger.info(f'SIS-UG proxy masks: k-means of {stats["vectors"]} feature vectors '
                           f'at {model.feature_layers[0]} into {model.num_clusters} clusters, '
                           f'{stats["iterations"]} iterations, mean cosine to the centre '
                           f'{stats["mean_cosine"]:.3f}')
        if runner.rank == 0:
            tmp = f'{cache}.tmp'
            torch.save(dict(key=repr(sorted(key.items())), centres=model.centres.cpu()), tmp)
            os.replace(tmp, cache)
            self.save_picture(runner, model)

    @torch.no_grad()
    def save_picture(self, runner, model):
        gen = torch.Generator().manual_seed(0)
        w = model.sample_latents(self.num_samples, gen)
        noise = model.stored_noise()
        feats, _ = model.state(w, noise)
        img = model.generator(None, w, noise=noise, input_is_latent=True)
        masks = colour_proxy_masks(model.proxy_masks(feats), model.num_clusters, img.shape[-2:])
        save_image(make_sample_grid(None, np.stack([to_uint8(img).cpu().numpy(), masks], 1),
                                    scale=2, row_names=['sample', 'proxy mask']),
                   osp.join(runner.work_dir, 'proxy_masks.png'))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        model = unwrap(runner.model)
        if (self.interval and model.train_part == 'rearranger' and is_main_process()
                and self.every_n_train_iters(runner, self.interval)):
            path = osp.join(runner.work_dir, 'rearranged', f'iter_{runner.iter + 1:06d}.png')
            save_image(rearrangement_grid(model, self.num_samples), path)
            runner.logger.info(f'rearrangement grid saved to {path}')
