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

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


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
    p.add_argument('--threads', type=int, default=None,
                   help='PyTorch threads (default: the cores available to this process)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   help='override config entries, e.g. model.generator.z_dim=16')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    from catgen.apis import init_synthesizer, synthesize_folder
    from catgen.utils.setup_env import set_threads
    set_threads(a.threads)
    model = init_synthesizer(a.config, None if a.checkpoint.lower() == 'none' else a.checkpoint,
                             device=a.device, cfg_options=a.cfg_options)
    return synthesize_folder(model, a.labels, a.out, num_samples=a.num_samples, seed=a.seed,
                             label_shift=a.label_shift, skip_existing=a.skip_existing)


if __name__ == '__main__':
    main()
