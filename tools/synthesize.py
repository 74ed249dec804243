"""Generate images for a folder of label maps.

    python tools/synthesize.py CONFIG CHECKPOINT --labels DIR --out DIR [--num-samples K] [--seed S]
                               [--skip-existing]

Label maps are read as the config's data set stores them on disk (e.g. SynthScenes: ids 0..N-1,
255 = ignore) and mapped to the model's label channels. Each output is written atomically as
``<out>/<stem>.png`` (or ``<stem>_<k>.png`` with several samples): a killed run leaves only
complete images under final names, so ``--skip-existing`` finishes it (the noise of an image
depends on the seed and the sample index only, so the images are the ones a whole run makes).
Temporary files a killed run left in ``--out`` are removed at the start.
"""
import argparse
import os.path as osp
import sys
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Generate images for a folder of label maps')
    p.add_argument('config')
    p.add_argument('checkpoint', help='checkpoint path, or "none" (e.g. training-free CAT)')
    p.add_argument('--labels', required=True, help='folder of label map PNGs')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--num-samples', type=int, default=1, help='images per label map')
    p.add_argument('--seed', type=int, default=0, help='noise seed')
    p.add_argument('--label-shift', choices=['auto', '0', '1'], default='auto',
                   help='on-disk id convention: 1 = ids 0..N-1 + 255 ignore (SynthScenes, '
                        'COCO-Stuff, folder), 0 = id 0 is don\'t care (ADE20K, Cityscapes); auto '
                        'takes it from the config\'s test data set')
    p.add_argument('--skip-existing', action='store_true',
                   help='keep images already in --out (complete: they are written atomically) '
                        'and generate only the missing ones, e.g. after a killed run')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. model.generator.z_dim=16')
    return p.parse_args(argv)


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


def main(argv=None):
    a = parse_args(argv)
    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from catgen.apis import init_synthesizer, synthesize
    from catgen.datasets.transforms.loading import map_to_channel_space, read_label_map
    from catgen.utils.io import atomic_write, is_temporary, remove_stale_temporaries

    # pathlib's glob also matches hidden names: leave out other tools' temporary files
    files = sorted(p for p in Path(a.labels).glob('*.png') if not is_temporary(p))
    if not files:
        raise FileNotFoundError(f'no label maps (*.png) in {a.labels}')
    out = Path(a.out)
    for stale in remove_stale_temporaries(out, suffixes=('.png', )):
        print(f'removed {stale}: an incomplete image that a killed run left behind')

    def names(path):
        return ([f'{path.stem}.png'] if a.num_samples == 1 else
                [f'{path.stem}_{k}.png' for k in range(a.num_samples)])

    if a.skip_existing:
        todo = [p for p in files if not all((out / n).is_file() for n in names(p))]
        print(f'--skip-existing: {len(files) - len(todo)} of {len(files)} label maps already '
              f'have their images in {out}')
        files = todo
    model = init_synthesizer(a.config, None if a.checkpoint.lower() == 'none' else a.checkpoint,
                             device=a.device, cfg_options=a.cfg_options)
    shift = label_shift_of(model.cfg) if a.label_shift == 'auto' else int(a.label_shift)
    num_classes = model.data_preprocessor.num_classes
    for path in tqdm(files, desc='synthesizing', unit='map'):
        label = map_to_channel_space(read_label_map(path), num_classes, shift, str(path))
        images = synthesize(model, label, num_samples=a.num_samples, seed=a.seed)
        for name, img in zip(names(path), images):
            with atomic_write(out / name) as tmp:
                Image.fromarray(np.ascontiguousarray(img)).save(tmp, format='PNG')
    print(f'{len(files) * a.num_samples} images written to {out}')
    return [out / n for p in files for n in names(p)]


if __name__ == '__main__':
    main()
