"""Write the restyled SynthScenes domains (night, sketch): unconditional few-shot targets for a
generator trained on the SynthScenes source images (docs/synthscenes.md).

    python tools/prepare_synthscenes_styles.py --out data/synthscenes-styles [--num-train 100]
                                               [--num-val 200] [--resolution 64] [--seed 0]

Idempotent and crash-safe, as tools/prepare_synthscenes.py.
"""
import argparse
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout


def parse_args(argv=None):
    from catgen.datasets.synthscenes.styles import STYLES
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='data/synthscenes-styles', help='output folder')
    parser.add_argument('--styles', nargs='+', default=list(STYLES), choices=STYLES)
    parser.add_argument('--num-train', type=int, default=100, help='training pool per style')
    parser.add_argument('--num-val', type=int, default=200, help='held-out images per style')
    parser.add_argument('--resolution', type=int, default=64, help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0, help='base seed (as the SynthScenes set)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from catgen.datasets.synthscenes.styles import write_styles
    start = time.perf_counter()
    try:
        out, written = write_styles(args.out, args.styles, args.num_train, args.num_val,
                                    args.seed, args.resolution)
    except (ValueError, FileExistsError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if written:
        print(f'styled SynthScenes ({", ".join(args.styles)}): wrote to {out} in '
              f'{time.perf_counter() - start:.1f} s')
    else:
        print(f'styled SynthScenes already complete in {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
