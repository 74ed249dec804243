"""Convert official boschresearch/OASIS weights (``*_G.pth``, ``*_D.pth``, ``*_EMA.pth``) into a
catgen checkpoint for the OASIS synthesizer.

Example::

    python tools/convert_oasis_checkpoint.py --generator oasis_ade20k/best_G.pth \
        --discriminator oasis_ade20k/best_D.pth --ema oasis_ade20k/best_EMA.pth \
        --out checkpoints/oasis_ade20k_official.pth --num-classes 151

The mapping and its checks live in ``catgen/models/oasis_checkpoint.py``.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from catgen.models.oasis_checkpoint import convert_official_oasis_state_dict  # noqa: E402
from catgen.utils.io import atomic_write  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--generator', help='official generator state dict (*_G.pth)')
    parser.add_argument('--discriminator', help='official discriminator state dict (*_D.pth)')
    parser.add_argument('--ema', help='official EMA generator state dict (*_EMA.pth)')
    parser.add_argument('--out', required=True, help='catgen checkpoint to write')
    parser.add_argument('--num-classes', type=int, default=None,
                        help='semantic channels incl. don\'t care (ADE20K 151, COCO-Stuff 183, '
                             'Cityscapes 35); checked against the weights')
    parser.add_argument('--z-dim', type=int, default=64,
                        help='noise channels of the official generator (0 for --no_3dnoise)')
    parser.add_argument('--crop-size', type=int, default=256,
                        help='image width the generator makes (recorded in meta; Cityscapes 512)')
    parser.add_argument('--aspect-ratio', type=float, default=1.0,
                        help='width / height (recorded in meta; Cityscapes 2.0)')
    args = parser.parse_args(argv)
    if not (args.generator or args.discriminator or args.ema):
        parser.error('give at least one of --generator, --discriminator, --ema')
    return args


def _load(path):
    if not os.path.isfile(path):
        raise SystemExit(f'error: {path} does not exist')
    obj = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SystemExit(f'error: {path} is not a state dict (a dict of tensors), as the official '
                         'OASIS code saves with torch.save(net.state_dict(), ...)')
    return obj


def main(argv=None):
    args = parse_args(argv)
    inputs = {name: getattr(args, name) for name in ('generator', 'discriminator', 'ema')}
    loaded = {name: _load(path) if path else None for name, path in inputs.items()}
    try:
        ckpt = convert_official_oasis_state_dict(
            **loaded, num_classes=args.num_classes, z_dim=args.z_dim,
            crop_size=args.crop_size, aspect_ratio=args.aspect_ratio)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from err
    ckpt['meta']['source_files'] = {k: os.path.abspath(v) for k, v in inputs.items() if v}
    with atomic_write(args.out) as tmp:
        torch.save(ckpt, tmp)
    meta = ckpt['meta']
    print(f'wrote {args.out}: {len(ckpt["state_dict"])} tensors, parts {meta["parts"]}, '
          f'num_classes {meta["num_classes"]}')
    if meta['filled_keys']:
        print(f'note: {len(meta["filled_keys"])} BatchNorm step counters absent from the official '
              'weights were set to 0')
    return 0


if __name__ == '__main__':
    sys.exit(main())
