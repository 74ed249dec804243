"""Generate N images from an unconditional synthesizer (StyleGAN2) with fixed latents."""
from pathlib import Path


def synthesize_images(model, out, num_images, seed=0, truncation=None, batch_size=16,
                      skip_existing=False, log=print):
    """Write ``<out>/<i:06d>.png`` for ``i`` in ``0 .. num_images - 1``.

    Image ``i`` is made from the latent and noise maps of sample id ``i`` under ``seed``
    (:meth:`~catgen.models.synthesizers.stylegan2_synthesizer.StyleGAN2Synthesizer.synthesize`):
    the same image whatever the batch size or the images skipped, so ``skip_existing`` finishes
    a killed run. Each image is written atomically.

    Args:
        model: an unconditional synthesizer from :func:`~catgen.apis.init_synthesizer`.
        out: output folder.
        num_images: how many.
        seed: latent seed (the synthesizer's ``eval_seed``).
        truncation: psi (None: the config's ``model.truncation``, 1 = off).
        batch_size: images per forward pass.
        skip_existing: generate only the images not yet in ``out``.
        log: a print-like function.

    Returns:
        list of the output paths.
    """
    import numpy as np
    import torch
    from PIL import Image
    from tqdm import tqdm

    from catgen.models.synthesizers.base_synthesizer import to_uint8
    from catgen.utils.io import atomic_write, remove_stale_temporaries

    if int(num_images) < 1:
        raise ValueError(f'--num-images must be >= 1, got {num_images}')
    if getattr(model.data_preprocessor, 'num_classes', None) != 0:
        raise ValueError(f'{type(model).__name__} reads label maps: give --labels (a folder of '
                         'label maps) instead of --num-images.')
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f'--out {out} is an existing file, not a folder.')
    for stale in remove_stale_temporaries(out, suffixes=('.png', )):
        log(f'removed {stale}: an incomplete image that a killed run left behind')
    paths = [out / f'{i:06d}.png' for i in range(int(num_images))]
    todo = [i for i, p in enumerate(paths) if not (skip_existing and p.is_file())]
    if skip_existing:
        log(f'--skip-existing: {len(paths) - len(todo)} of {len(paths)} images already in {out}')
    model.eval_seed = int(seed)
    size = model.eval_generator.output_size
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(todo), batch_size), desc='synthesizing', unit='batch'):
        ids = todo[start:start + batch_size]
        seg = torch.zeros(len(ids), 0, *size, device=device)
        images = to_uint8(model.synthesize(seg, sample_ids=ids, truncation=truncation)).cpu()
        for i, img in zip(ids, images):
            with atomic_write(paths[i]) as tmp:
                Image.fromarray(np.ascontiguousarray(img.permute(1, 2, 0).numpy())).save(
                    tmp, format='PNG')
    log(f'{len(todo)} images written to {out}')
    return paths
