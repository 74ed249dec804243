"""Generate images for a folder of label maps, or N images from an unconditional model.

    python tools/synthesize.py CONFIG CHECKPOINT --labels DIR --out DIR [--num-samples K] [--seed S]
                               [--skip-existing] [--style IMAGE]
    python tools/synthesize.py CONFIG CHECKPOINT --num-images N --out DIR [--seed S]
                               [--truncation PSI] [--skip-existing]      (StyleGAN2)

Unconditional models (StyleGAN2): image ``<out>/<i:06d>.png`` comes from the latent of sample
``i`` under ``--seed``; ``--truncation`` pulls the latents towards the mean (psi < 1: less
diverse, more typical images).

Label maps are read as the config's data set stores them on disk (e.g. SynthScenes: ids 0..N-1,
255 = ignore) and mapped to the model's label channels. Each output is written atomically as
``<out>/<stem>.png`` (or ``<stem>_<k>.png`` with several samples): a killed run leaves only
complete images under final names, so ``--skip-existing`` finishes it (the noise of an image
depends on the seed and the sample index only, so the images are the ones a whole run makes).
Temporary files a killed run left in ``--out`` are removed at the start.

``--style IMAGE`` (SPADE trained with ``model.generator.use_vae=True``): every image takes the
style of IMAGE (encoded by the style encoder); without it styles are random (z ~ N(0, I)).
A model that reads instance edges (SPADE on Cityscapes / COCO-Stuff) gets the label map's class
boundaries as edges.
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
    p.add_argument('--labels', help='folder of label map PNGs (label-map models)')
    p.add_argument('--num-images', type=int, default=None,
                   help='images to generate (unconditional models, e.g. StyleGAN2)')
    p.add_argument('--truncation', type=float, default=None,
                   help='truncation psi of an unconditional model (default: the config\'s, 1)')
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
    p.add_argument('--style', default=None, metavar='IMAGE',
                   help='style image (SPADE with a style encoder, use_vae=True): every output '
                        'takes its style; default: random styles')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None,
                   help='PyTorch threads (default: the cores available to this process)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   help='override config entries, e.g. model.generator.z_dim=16')
    a = p.parse_args(argv)
    if (a.labels is None) == (a.num_images is None):
        p.error('give --labels (a model that reads label maps) or --num-images (an '
                'unconditional model such as StyleGAN2), not both')
    return a


def main(argv=None):
    a = parse_args(argv)
    from catgen.apis import init_synthesizer, synthesize_folder
    from catgen.utils.setup_env import set_threads
    set_threads(a.threads)
    model = init_synthesizer(a.config, None if a.checkpoint.lower() == 'none' else a.checkpoint,
                             device=a.device, cfg_options=a.cfg_options)
    if a.num_images is not None:
        from catgen.apis import synthesize_images
        try:
            return synthesize_images(model, a.out, a.num_images, seed=a.seed,
                                     truncation=a.truncation, skip_existing=a.skip_existing)
        except ValueError as err:
            raise SystemExit(f'error: {err}') from err
    if getattr(model.data_preprocessor, 'num_classes', 1) == 0:
        raise SystemExit(f'error: {type(model).__name__} is unconditional (no label maps): use '
                         '--num-images N instead of --labels.')
    extra = {}
    if a.style is not None:
        from catgen.apis.inference import read_style_image
        if not getattr(model, 'encodes_style', False):
            raise SystemExit(f'--style: {type(model).__name__} has no style encoder; train SPADE '
                             'with model.generator.use_vae=True, or leave --style out.')
        extra['style_image'] = read_style_image(a.style)
    return synthesize_folder(model, a.labels, a.out, num_samples=a.num_samples, seed=a.seed,
                             label_shift=a.label_shift, skip_existing=a.skip_existing, **extra)


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); opt out:
    # CATGEN_MALLOC_TUNING=0
    main()
