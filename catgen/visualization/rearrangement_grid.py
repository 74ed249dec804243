"""Pictures of SIS-UG's rearranger: a sample moved to another sample's proxy mask."""
import numpy as np
import torch

from catgen.visualization.colorize import colorize_label, default_palette
from catgen.visualization.sample_grid import make_sample_grid


def _uint8(img):
    return ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def colour_proxy_masks(masks, num_clusters, size=None):
    """int Tensor[N, h, w] cluster ids -> uint8 array[N, 3, H, W] in a fixed k-colour palette
    (upsampled, nearest, to ``size``)."""
    if size is not None:
        masks = torch.nn.functional.interpolate(masks[:, None].float(), size=tuple(size),
                                                mode='nearest')[:, 0].long()
    palette = default_palette(num_clusters)
    return np.stack([colorize_label(m, palette).transpose(2, 0, 1)
                     for m in masks.cpu().numpy()])


@torch.no_grad()
def rearrangement_grid(model, num_samples=8, seed=0, scale=2):
    """Rows: source sample | its proxy mask | the target's proxy mask (the next sample's) |
    the source rearranged to it | its proxy mask | the target sample. Columns: samples.

    Args:
        model: a :class:`~catgen.models.synthesizers.SISUGSynthesizer` with fitted centres.
        num_samples: columns (random samples drawn with ``seed``).
        seed: the samples' seed.
        scale: integer upscaling of the tiles.

    Returns:
        np.uint8[H, W, 3].
    """
    was_training = model.training
    model.eval()
    try:
        gen = torch.Generator().manual_seed(int(seed))
        w = model.sample_latents(num_samples, gen)
        noise = model.stored_noise()
        feats, _ = model.state(w, noise)
        source = model.proxy_masks(feats)
        target = source.roll(-1, 0)
        images = model.generator(None, w, noise=noise, input_is_latent=True)
        moved, moved_feats = model.rearrange(w, target, noise=noise, return_state=True)
        size = images.shape[-2:]
        k = model.num_clusters
        rows = [_uint8(images), colour_proxy_masks(source, k, size),
                colour_proxy_masks(target, k, size), _uint8(moved),
                colour_proxy_masks(model.proxy_masks(moved_feats), k, size),
                _uint8(images.roll(-1, 0))]
    finally:
        model.train(was_training)
    return make_sample_grid(None, np.stack(rows, 1), scale=scale,
                            row_names=['source', 'its proxy mask', 'target mask', 'rearranged',
                                       'its proxy mask', 'target sample'])
