"""Generate images for a folder of label maps, atomically and resumably."""
from pathlib import Path


def label_shift_of(cfg):
    """The on-disk label convention of the config's test data set (0 or 1)."""
    from catgen.registry import DATASETS
    ds_cfg = cfg.test_dataloader.dataset
    try:
        return int(DATASETS.build(dict(ds_cfg, lazy_init=True)).metainfo['label_shift'])
    except Exception as e:  # data absent: fall back on the class's declaration
        cls = DATASETS.get(ds_cfg['type'])
        shift = getattr(cls, 'METAINFO', {}).get('label_shift')
        if shift is None:
            raise RuntimeError(f'cannot tell the label convention of {ds_cfg["type"]} ({e}); '
                               'pass --label-shift 0 or 1') from e
        return int(shift)


def synthesize_folder(model, labels, out, num_samples=1, seed=0, label_shift='auto',
                      skip_existing=False, log=print, style_image=None):
    """Write ``<out>/<stem>.png`` (``<stem>_<k>.png`` for several samples) for every label map
    ``<labels>/<stem>.png``.

    Label maps are read as the config's data set stores them on disk and mapped to the model's
    label channels. Each image is written atomically: a killed run leaves only complete images
    under final names, so ``skip_existing`` finishes it (the noise of an image depends on the
    seed and the sample index only). Temporary files a killed run left in ``out`` are removed.

    Args:
        model: a synthesizer from :func:`~catgen.apis.init_synthesizer`.
        labels: folder of label-map PNGs.
        out: output folder.
        num_samples: images per label map.
        seed: noise seed.
        label_shift: 'auto' (the config's test data set's convention), 0 or 1.
        skip_existing: generate only the label maps whose images are not all in ``out``.
        log: a print-like function for progress messages.
        style_image: one style image for every output (SPADE with a style encoder; see
            :func:`~catgen.apis.inference.synthesize`), or None for random styles.

    Returns:
        list of the output paths.
    """
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from catgen.apis.inference import synthesize
    from catgen.datasets.transforms.loading import map_to_channel_space, read_label_map
    from catgen.utils.io import atomic_write, is_temporary, remove_stale_temporaries

    if int(num_samples) < 1:
        raise ValueError(f'--num-samples must be >= 1 (images per label map), got {num_samples}')
    if Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f'--out {out} is an existing file, not a folder: images would '
                                 'not be written. Pass a folder (created if missing).')
    # pathlib's glob also matches hidden names: leave out other tools' temporary files
    files = sorted(p for p in Path(labels).glob('*.png') if not is_temporary(p))
    if not files:
        raise FileNotFoundError(f'no label maps (*.png) in {labels}')
    out = Path(out)
    for stale in remove_stale_temporaries(out, suffixes=('.png', )):
        log(f'removed {stale}: an incomplete image that a killed run left behind')

    def names(path):
        return ([f'{path.stem}.png'] if num_samples == 1 else
                [f'{path.stem}_{k}.png' for k in range(num_samples)])

    all_files = files
    if skip_existing:
        files = [p for p in files if not all((out / n).is_file() for n in names(p))]
        log(f'--skip-existing: {len(all_files) - len(files)} of {len(all_files)} label maps '
            f'already have their images in {out}')
    shift = label_shift_of(model.cfg) if label_shift == 'auto' else int(label_shift)
    num_classes = model.data_preprocessor.num_classes
    for path in tqdm(files, desc='synthesizing', unit='map'):
        label = map_to_channel_space(read_label_map(path), num_classes, shift, str(path))
        images = synthesize(model, label, num_samples=num_samples, seed=seed,
                            style_image=style_image)
        for name, img in zip(names(path), images):
            with atomic_write(out / name) as tmp:
                Image.fromarray(np.ascontiguousarray(img)).save(tmp, format='PNG')
    log(f'{len(files) * num_samples} images written to {out}')
    return [out / n for p in files for n in names(p)]
