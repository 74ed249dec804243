"""Where does SIS-UG lose the layout? mIoU along its pipeline, on inverted held-out images.

SIS-UG's output depends on three things: the prior (can it draw the layout?), the rearranger
(can it move a source's features to a proxy mask?) and the mapper (does it give the right proxy
mask?), plus the random source (does it have the right appearance for each region?). This
script scores, with the source segmenter of the model zoo against the label maps of the first
``--num-val`` test images (inverted into the prior; cached in the run dir):

- ``reconstruction``: the inversions themselves (the prior's ceiling);
- ``rearranged_own``: the inversions rearranged to their own proxy masks (what the rearranger
  keeps of a source that already has the layout);
- ``oracle_random``: random sources rearranged to the images' own proxy masks (a perfect
  mapper; what the rearranger and the random source's appearance allow);
- ``mapper_own``: the inversions rearranged to the mapper's proxy masks (editing with the
  image's own layout: what the mapper loses when the appearance is right);
- ``mapper_random``: random sources rearranged to the mapper's proxy masks (the synthesis that
  ``tools/test.py`` scores, on these maps);
- ``mapper_accuracy``: the mapper's proxy masks against the inversions' (pixel accuracy, %).

Random sources: ``--num-sources`` per map, the synthesizer's own (sample ids, eval_seed; its
``source_candidates``).

    python tools/benchmarks/sisug_diagnostics.py work_dirs/sis-ug_mapper_synthscenes-source_5shot \
        --out docs/results/sis_ug/diagnostics_5shot.json
"""
import argparse
import json
import os.path as osp
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from fewshot_smis_pseudo_labels import latest_checkpoint, run_config  # noqa: E402

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('run', help='work dir of a SIS-UG stage-2 run (config dump + checkpoint)')
    p.add_argument('--num-val', type=int, default=32)
    p.add_argument('--num-sources', type=int, default=2, help='random sources per map')
    p.add_argument('--segmenter-config', default='configs/segmenters/fcn_synthscenes-source.py')
    p.add_argument('--segmenter-checkpoint', default='zoo://fcn_synthscenes-source')
    p.add_argument('--label-offset', type=int, default=1)
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    p.add_argument('--out', required=True, help='JSON file to write')
    return p.parse_args(argv)


@torch.no_grad()
def main(argv=None):
    args = parse_args(argv)
    from mmengine.dataset import pseudo_collate

    from catgen.apis import init_synthesizer
    from catgen.evaluation.metrics.segmentation_miou import iou_areas, iou_from_areas
    from catgen.pretrained import MMSegSegmenter
    from catgen.registry import DATASETS
    from catgen.utils.io import write_text_atomic

    model = init_synthesizer(run_config(args.run), latest_checkpoint(args.run),
                             cfg_options=args.cfg_options)
    segmenter = MMSegSegmenter(args.segmenter_config, args.segmenter_checkpoint)
    dataset = DATASETS.build(model.cfg.test_dataloader.dataset)
    n = min(args.num_val, len(dataset))
    pre = model.data_preprocessor
    data = pre(pseudo_collate([dataset[i] for i in range(n)]), False)['inputs']
    user, seg = model.conditioning(data)
    truth = data['label']
    cache = osp.join(args.run, f'diagnostics_inversion_{n}.pth')
    latents, mse, _ = model.invert_cached(data['img'], cache)
    noise = model.stored_noise()
    feats, _ = model.state(latents, noise)
    own = model.proxy_masks(feats)
    mapped = model.map_masks(seg)
    k_seg = None

    def miou(images):
        nonlocal k_seg
        u8 = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        logits = segmenter(u8)
        k_seg = logits.shape[1]
        target = truth - args.label_offset
        target[(truth == pre.ignore_index) | (target < 0)] = -1
        return iou_areas(logits.argmax(1).numpy(), target.numpy(), k_seg)

    def random_sources(target):
        areas = 0
        for j in range(args.num_sources):
            ids = [1_000 * j + i for i in range(n)]
            if model.source_candidates > 1:
                w = model.choose_sources(target, ids, noise)
            else:
                w = model._truncate(model.generator.get_latent(model.sample_noise(n, ids)))
            areas = areas + miou(model.rearrange(w, target, noise=noise))
        return areas

    recon = model.generator(None, latents, noise=noise, input_is_latent=True)
    rows = dict(reconstruction=miou(recon),
                rearranged_own=miou(model.rearrange(latents, own, noise=noise)),
                oracle_random=random_sources(own),
                mapper_own=miou(model.rearrange(latents, mapped, noise=noise)),
                mapper_random=random_sources(mapped))
    report = dict(run=args.run, num_val=n, num_sources=args.num_sources,
                  mapper_input=model.mapper_input, source_candidates=model.source_candidates,
                  inversion_mse=round(float(mse.mean()), 4),
                  mapper_accuracy=round(float((mapped == own).float().mean()) * 100, 2))
    for name, areas in rows.items():
        report[name] = round(iou_from_areas(areas)[1], 2)
    write_text_atomic(args.out, json.dumps(report, indent=2) + '\n')
    print(json.dumps(report, indent=2))
    return report


if __name__ == '__main__':
    main()
