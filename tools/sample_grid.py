"""A sample grid of a trained model on the label maps of its config's data set.

    python tools/sample_grid.py CONFIG CHECKPOINT --out grid.png [--split test] [--num-maps 8]
                                [--num-samples 3] [--scale 2]

One column per label map (the first ``--num-maps`` of the split), rows: label map | one row per
sample (different noise, fixed across runs) | real image. CHECKPOINT may be ``zoo://NAME`` or
``none`` for a training-free strategy.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402

SPLITS = ('train', 'val', 'test')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='A sample grid of a trained model')
    p.add_argument('config')
    p.add_argument('checkpoint', help='checkpoint path, zoo://NAME, or "none" (training-free)')
    p.add_argument('--out', required=True, help='PNG file to write')
    p.add_argument('--split', choices=SPLITS, default='test',
                   help="the config's <split>_dataloader data set (default test)")
    p.add_argument('--num-maps', type=int, default=8, help='label maps (columns)')
    p.add_argument('--num-samples', type=int, default=3, help='generated rows')
    p.add_argument('--scale', type=int, default=2, help='tile upscaling (nearest)')
    p.add_argument('--name', default='generated', help='title of the generated rows')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None,
                   help='PyTorch threads (default: $OMP_NUM_THREADS, else the cores available)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   help='override config entries, e.g. test_dataloader.dataset.data_root=DIR')
    a = p.parse_args(argv)
    for name in ('num_maps', 'num_samples', 'scale'):
        if getattr(a, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(a, name)}')
    if osp.isdir(a.out) or not a.out.lower().endswith('.png'):
        p.error(f'--out must be a .png file path, got {a.out}')
    return a


def main(argv=None):
    a = parse_args(argv)
    from catgen.apis import dataset_sample_grid, init_synthesizer
    from catgen.registry import DATASETS
    from catgen.utils.setup_env import set_threads
    set_threads(a.threads)
    model = init_synthesizer(a.config, None if a.checkpoint.lower() == 'none' else a.checkpoint,
                             device=a.device, cfg_options=a.cfg_options)
    dataset = DATASETS.build(model.cfg[f'{a.split}_dataloader'].dataset)
    dataset_sample_grid([(a.name, model)], dataset, out=a.out, num_maps=a.num_maps,
                        num_samples=a.num_samples, scale=a.scale)
    print(f'wrote {a.out}')
    return a.out


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
