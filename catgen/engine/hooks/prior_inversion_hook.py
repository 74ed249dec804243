"""PriorInversionHook: before training, invert the labelled shots into the prior (Fewshot-SMIS,
SIS-UG's mapper stage)."""
import os.path as osp

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook

from catgen.models.synthesizers.base_synthesizer import to_uint8, unwrap
from catgen.registry import HOOKS
from catgen.visualization import make_sample_grid, save_image
from catgen.visualization.colorize import colorize_label, default_palette


@HOOKS.register_module()
class PriorInversionHook(Hook):
    """Prepare the pseudo labelling of a prior-based synthesizer before the first iteration:
    Fewshot-SMIS's prototypes / support features, SIS-UG's proxy masks of the labelled shots.

    Reads every image of the training set (the 1 to 5 labelled shots) through its pipeline and
    the data preprocessor, and calls ``model.prepare_pseudo_labels`` with the dense label maps
    (dense mode) or the scribbles (sparse mode, ``inputs['scribbles']`` from
    ``SimulateScribbles``; the label maps themselves when the data have none). The inverted
    latents are cached in ``<work_dir>/<cache>`` (a resumed run reads them back). The main
    process inverts; the others wait and read the cache.

    Writes, in the work dir:

    - ``inversion.png``: rows label map (or scribbles) | pseudo labels (SIS-UG: proxy masks, a
      k-colour palette) of the reconstruction |
      reconstruction | real image, one column per shot; the reconstruction error is logged;
    - ``pseudo_labels.png``: ``num_samples`` random samples of the prior (seed 0) above their
      pseudo label maps: what the encoder is trained on.

    Args:
        cache: file name of the cached latents in the work dir.
        num_samples: samples in ``pseudo_labels.png``.
    """

    priority = 'HIGH'

    def __init__(self, cache='prior_inversion.pth', num_samples=8):
        self.cache = cache
        self.num_samples = int(num_samples)

    def before_train(self, runner):
        model = unwrap(runner.model)
        if getattr(model, 'prior_checkpoint', None) is None:
            raise ValueError(f'{model.method} training needs a trained prior: '
                             'model.prior_checkpoint is None, so the prior would keep its random '
                             'initial weights and every pseudo label would be meaningless. Set it '
                             'to a StyleGAN2 '
                             'checkpoint (e.g. zoo://stylegan2_synthscenes-source).')
        dataset = runner.train_dataloader.dataset
        if len(dataset) > 64:
            raise ValueError(f'PriorInversionHook inverts every training image, and the training '
                             f'set has {len(dataset)}: {model.method} takes a few labelled shots '
                             '(set num_shots in the dataset config).')
        data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]),
                                       False)['inputs']
        if 'img' not in data:
            raise KeyError('PriorInversionHook needs the images of the labelled shots: put '
                           'LoadSISImageFromFile in the training pipeline.')
        labels, _ = model.conditioning(data)
        cache = osp.join(runner.work_dir, self.cache)
        out = None
        if is_main_process():
            out = model.prepare_pseudo_labels(data['img'], labels, cache_file=cache)
        barrier()
        if out is None:
            out = model.prepare_pseudo_labels(data['img'], labels, cache_file=cache,
                                              progress=False)
        mse = [round(float(v), 4) for v in out['mse']]
        runner.logger.info(f'prior inversion of {len(mse)} labelled images '
                           f'({"read from" if out["from_cache"] else "cached in"} {cache}): '
                           f'reconstruction MSE {mse}')
        if is_main_process():
            self.save_pictures(runner, model, data, labels, out)

    @torch.no_grad()
    def save_pictures(self, runner, model, data, labels, out):
        palette = runner.train_dataloader.dataset.metainfo.get('palette')
        palette = (default_palette(model.data_preprocessor.num_classes) if palette is None
                   else np.asarray(palette, np.uint8))
        gen = model.generator
        noise = [getattr(gen.noises, f'noise_{i}') for i in range(gen.num_layers)]
        feats, recon = model.prior_features(out['latents'], noise=noise)
        pseudo = model.pseudo_labels(feats, size=labels.shape[-2:])
        rows = np.stack([self._colour_pseudo(model, pseudo, palette),
                         to_uint8(recon).cpu().numpy()], 1)
        grid = make_sample_grid(labels.cpu().numpy(), rows, to_uint8(data['img']).cpu().numpy(),
                                palette=palette, scale=2,
                                row_names=['label', 'pseudo label', 'reconstruction', 'real'])
        save_image(grid, osp.join(runner.work_dir, 'inversion.png'))
        g = torch.Generator().manual_seed(0)
        z = torch.randn(self.num_samples, gen.style_dim, generator=g).to(model.latent_avg)
        feats, imgs = model.prior_features(gen.get_latent(z))
        pseudo = model.pseudo_labels(feats, size=imgs.shape[-2:])
        grid = make_sample_grid(None, np.stack([to_uint8(imgs).cpu().numpy(),
                                                self._colour_pseudo(model, pseudo, palette)], 1),
                                scale=2, row_names=['sample', 'pseudo label'])
        save_image(grid, osp.join(runner.work_dir, 'pseudo_labels.png'))

    @staticmethod
    def _colour_pseudo(model, labels, palette):
        """Pseudo labels in the data's palette; SIS-UG's proxy masks in a k-colour one."""
        k = getattr(model, 'num_clusters', None)
        return _colour(labels, palette if k is None else default_palette(k))


def _colour(labels, palette):
    """int Tensor[N, H, W] -> uint8 array[N, 3, H, W] (unlabelled pixels white)."""
    return np.stack([colorize_label(lb, palette).transpose(2, 0, 1)
                     for lb in labels.cpu().numpy()])
