"""Write the SynthScenes data set to disk.

    python tools/prepare_synthscenes.py --out data/synthscenes [--resolution 64] [--seed 0]
                                        [--workers N] [--small] [--num-train-target N ...]

Idempotent: if ``--out`` already holds a complete set with the same settings (its
``classes.json``, written last, records them) nothing is written. Otherwise the set is written
into ``<out>.tmp-<pid>`` and renamed to ``<out>`` when complete, so a killed run never leaves a
half set that looks complete. ``--small`` writes a tiny set for tests and CI (64 source train,
16 source val, 100 target train, 20 target val images).
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

SMALL = {'num_train_source': 64, 'num_val_source': 16, 'num_train_target': 100,
         'num_val_target': 20}
FULL = {'num_train_source': 2000, 'num_val_source': 200, 'num_train_target': 1000,
        'num_val_target': 500}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Write the SynthScenes data set.')
    parser.add_argument('--out', default='data/synthscenes', help='output folder')
    parser.add_argument('--resolution', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='base seed of the whole set')
    parser.add_argument('--subset-seed', type=int, default=0, help='seed of the few-shot lists')
    parser.add_argument('--workers', type=int, default=1, help='worker processes')
    parser.add_argument('--small', action='store_true',
                        help='a tiny set for tests and CI (64/16 source, 100/20 target images)')
    for key in FULL:
        parser.add_argument('--' + key.replace('_', '-'), type=int, default=None,
                            help=f'override the number of images (full: {FULL[key]}, small: '
                                 f'{SMALL[key]})')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from catgen.datasets.synthscenes import write_synthscenes
    counts = dict(SMALL if args.small else FULL)
    for key in counts:
        if getattr(args, key) is not None:
            counts[key] = getattr(args, key)
    start = time.perf_counter()
    try:
        out, written = write_synthscenes(
            args.out, resolution=args.resolution, seed=args.seed, progress=not args.no_progress,
            num_workers=args.workers, subset_seed=args.subset_seed, **counts)
    except (ValueError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    total = sum(counts.values())
    if written:
        print(f'SynthScenes: wrote {total} scenes ({args.resolution}x{args.resolution}) to '
              f'{out} in {time.perf_counter() - start:.1f} s')
    else:
        print(f'SynthScenes: {out} already holds a complete set with these settings; '
              'nothing to do.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
