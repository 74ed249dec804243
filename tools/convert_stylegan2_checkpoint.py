"""Convert a rosinality/stylegan2-pytorch checkpoint (the format of CDC's and DCL's released
source models: ``g``, ``d``, ``g_ema``, ``args``) into a catgen checkpoint for the StyleGAN2
synthesizer.

Example::

    python tools/convert_stylegan2_checkpoint.py checkpoints/ffhq.pt \
        --out checkpoints/stylegan2_ffhq_256_catgen.pth

The mapping and its checks live in ``catgen/models/stylegan2_checkpoint.py``. The optimizer
states are not converted (a transfer run starts new optimizers).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from catgen.models.stylegan2_checkpoint import convert_rosinality_checkpoint  # noqa: E402
from catgen.utils.io import atomic_write  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='rosinality/CDC/DCL checkpoint (.pt)')
    parser.add_argument('--out', required=True, help='catgen checkpoint to write')
    return parser.parse_args(argv)


def load_rosinality(path):
    """Load ``path`` without running pickled code: tensors, dicts and the ``args`` Namespace."""
    if not os.path.isfile(path):
        raise SystemExit(f'error: {path} does not exist; download the source model (e.g. the '
                         'FFHQ 256 px StyleGAN2 that CDC/DCL start from) and give its path')
    with torch.serialization.safe_globals([argparse.Namespace]):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as err:  # noqa: BLE001 - reported with the file name
            raise SystemExit(f'error: cannot read {path} as a StyleGAN2 checkpoint ({err})')


def main(argv=None):
    args = parse_args(argv)
    try:
        ckpt = convert_rosinality_checkpoint(load_rosinality(args.checkpoint))
    except ValueError as err:
        raise SystemExit(f'error: {err}') from err
    ckpt['meta']['source_file'] = os.path.abspath(args.checkpoint)
    with atomic_write(args.out) as tmp:
        torch.save(ckpt, tmp)
    meta = ckpt['meta']
    print(f'wrote {args.out}: {len(ckpt["state_dict"])} tensors, parts {meta["parts"]}, '
          f'generator {meta["generator_cfg"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
