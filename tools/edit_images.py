"""Spatial editing of real images with SIS-UG: invert each image into the prior, then rearrange
its features to a new label map.

    python tools/edit_images.py CONFIG CHECKPOINT --num 8 --out DIR [--steps N]

takes the first ``--num`` test images of the config's data set, and gives image ``i`` the label
map of image ``i + 1`` (the next one; the last takes the first's): the edited image keeps the
real image's appearance (its inverted latents and features) in the new layout. Writes
``<out>/<stem>.png`` per edited image, ``<out>/grid.png`` (rows: real image, its
reconstruction from the inversion, the new label map, the mapper's proxy mask, the edit) and
``<out>/inversion.pth`` (the inversion cache: a second run with the same images reuses it).
``--steps`` overrides the inversion's steps (the config's by default).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Spatial editing of real images (SIS-UG)')
    p.add_argument('config', help='a SIS-UG config (stage 2)')
    p.add_argument('checkpoint', help='its trained checkpoint (stage 2: the mapper)')
    p.add_argument('--num', type=int, default=8, help='test images to edit')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--steps', type=int, default=None, help='inversion steps')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   help='override config entries')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch
    from mmengine.dataset import pseudo_collate

    from catgen.apis import init_synthesizer
    from catgen.models.synthesizers.base_synthesizer import to_uint8
    from catgen.registry import DATASETS
    from catgen.visualization import make_sample_grid, save_image
    from catgen.visualization.colorize import colorize_label, default_palette
    from catgen.visualization.rearrangement_grid import colour_proxy_masks

    model = init_synthesizer(args.config, args.checkpoint, device=args.device,
                             cfg_options=args.cfg_options)
    if not hasattr(model, 'edit'):
        raise ValueError(f'{args.config}: {type(model).__name__} cannot edit real images; '
                         'tools/edit_images.py takes a SIS-UG config (configs/sis-ug/)')
    if args.steps is not None:
        model.inversion['steps'] = int(args.steps)
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    n = min(args.num, len(dataset))
    if n < 2:
        raise ValueError(f'--num must be >= 2 (image i takes the label map of image i + 1), '
                         f'got {args.num} with {len(dataset)} test images')
    samples = [dataset[i] for i in range(n)]
    data = model.data_preprocessor(pseudo_collate(samples), False)['inputs']
    labels, _ = model.conditioning(data)
    targets = labels.roll(-1, 0)
    cache = osp.join(args.out, 'inversion.pth')
    edited, recon = model.edit(data['img'], targets, cache_file=cache, progress=True)
    with torch.no_grad():
        proxy = model.map_masks(model.mapper_input_from_labels(targets))
    edited_u8 = to_uint8(edited).cpu().numpy()
    for sample, img in zip(samples, edited_u8):
        stem = osp.splitext(osp.basename(sample['data_samples'].img_path))[0]
        save_image(img.transpose(1, 2, 0), osp.join(args.out, f'{stem}.png'))
    palette = dataset.metainfo.get('palette')
    palette = (default_palette(model.data_preprocessor.num_classes) if palette is None
               else np.asarray(palette, np.uint8))
    coloured = np.stack([colorize_label(t, palette).transpose(2, 0, 1)
                         for t in targets.cpu().numpy()])
    rows = np.stack([to_uint8(data['img']).cpu().numpy(), to_uint8(recon).cpu().numpy(),
                     coloured, colour_proxy_masks(proxy, model.num_clusters, edited.shape[-2:]),
                     edited_u8], 1)
    grid = make_sample_grid(None, rows, scale=2,
                            row_names=['real image', 'reconstruction', 'new label map',
                                       'proxy mask', 'edited'])
    save_image(grid, osp.join(args.out, 'grid.png'))
    print(f'{n} edited images and grid.png in {args.out}')
    return edited


if __name__ == '__main__':
    main()
