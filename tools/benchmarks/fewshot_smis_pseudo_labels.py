"""How good are Fewshot-SMIS's pseudo labels? Agreement with a segmenter on the prior's samples.

Fewshot-SMIS trains its encoder on random samples of the prior labelled by prototypes (dense) or
by per-pixel claims (sparse). This script measures those labels where a reference exists: the
source segmenter of the model zoo (val mIoU 97.5 on real SynthScenes source images) segments the
same samples, and the pseudo labels are scored against its prediction:

- ``miou`` / ``acc``: mean IoU and pixel accuracy of the pseudo labels over the labelled pixels
  (all of them in dense mode), segmenter prediction as the truth;
- ``coverage``: the fraction of pixels with a pseudo label (1 in dense mode);
- ``classes_in_shots`` / ``classes_in_samples``: classes the labelled shots show vs the classes
  the segmenter finds covering >= 0.5 % of the samples' pixels;
- ``iou``: per class;
- ``latent_mse``: how well the trained encoder regresses the samples' w from their pseudo
  labels (its training loss, on these samples: ``encoder``), against predicting ``w_avg`` for
  all (``w_avg``, the variance) and a ridge regression (lambda 10) from the pseudo labels'
  one-hot pooled to 4x4, fitted on the first half of the samples and scored on the second
  (``ridge_4x4``): how much of the recoverable information the encoder has learnt.

With ``--ceiling N``, also the prior's ceiling: the first N test images inverted into the prior
(the run's inversion options) and their reconstructions segmented, mIoU against their own label
maps (``ceiling_miou``): what the best latents of this prior, found by optimisation against the
real images themselves, reach; no encoder can do better.

For each run dir (written by tools/train.py with a Fewshot-SMIS config: its config dump,
``prior_inversion.pth`` and a checkpoint), the model is rebuilt, the pseudo labelling prepared
from the cached inversion of the same shots, and ``--num-samples`` samples drawn with seed 0.

    python tools/benchmarks/fewshot_smis_pseudo_labels.py work_dirs/fewshot_smis/{1shot,5shot} \
        --out docs/results/fewshot_smis/pseudo_labels.json
"""
import argparse
import glob
import json
import os.path as osp
import sys

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('runs', nargs='+', help='work dirs of Fewshot-SMIS runs')
    p.add_argument('--segmenter-config', default='configs/segmenters/fcn_synthscenes-source.py')
    p.add_argument('--segmenter-checkpoint', default='zoo://fcn_synthscenes-source')
    p.add_argument('--label-offset', type=int, default=1,
                   help='label id l is segmenter class l - offset (SynthScenes: 1)')
    p.add_argument('--num-samples', type=int, default=512)
    p.add_argument('--ceiling', type=int, default=0, metavar='N',
                   help='invert the first N test images and score their reconstructions')
    p.add_argument('--feature-layers', nargs='+', default=None, metavar='LEVEL',
                   help="the prior's feature levels for the pseudo labels instead of the "
                        "run's (e.g. convs.3 convs.5 convs.7): a what-if on the same inversion")
    p.add_argument('--out', required=True, help='JSON file to write')
    return p.parse_args(argv)


def run_config(run):
    """The config dumped into a run dir by tools/train.py."""
    found = [c for c in glob.glob(osp.join(run, '*.py'))]
    if len(found) != 1:
        raise FileNotFoundError(f'{run}: expected one config dump (*.py) in the run dir, found '
                                f'{found}; pass the work dir of a tools/train.py run.')
    return found[0]


def latest_checkpoint(run):
    ckpts = sorted(glob.glob(osp.join(run, 'iter_*.pth')),
                   key=lambda p: int(osp.basename(p)[5:-4]))
    if not ckpts:
        raise FileNotFoundError(f'{run}: no iter_*.pth checkpoint')
    return ckpts[-1]


@torch.no_grad()
def measure(run, segmenter, args):
    from mmengine.dataset import pseudo_collate

    from catgen.apis import init_synthesizer
    from catgen.evaluation.metrics.segmentation_miou import iou_areas, iou_from_areas
    from catgen.registry import DATASETS
    from catgen.utils.config import load_config

    config = run_config(run)
    model = init_synthesizer(config, latest_checkpoint(run))
    cfg = load_config(config)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]),
                                   False)['inputs']
    labels, _ = model.conditioning(data)
    if args.feature_layers:
        model.feature_layers = tuple(args.feature_layers)
    cache = osp.join(run, 'prior_inversion.pth')
    out = model.prepare_pseudo_labels(data['img'], labels, cache_file=cache, progress=False)
    if not out['from_cache']:
        print(f'{run}: the inversion cache did not match; inverted again')
    gen = model.generator
    g = torch.Generator().manual_seed(0)
    z = torch.randn(args.num_samples, gen.style_dim, generator=g)
    num_labels = model.data_preprocessor.num_classes
    k = None
    areas, counted, total, sample_pixels = 0, 0, 0, None
    ws, w_hats, pooled = [], [], []
    for start in range(0, len(z), 32):
        w = gen.get_latent(z[start:start + 32])
        feats, imgs = model.prior_features(w)
        pseudo = model.pseudo_labels(feats, size=imgs.shape[-2:])
        seg = model.data_preprocessor.one_hot(pseudo)
        ws.append(w)
        w_hats.append(model.encode(seg))
        pooled.append(torch.nn.functional.adaptive_avg_pool2d(seg, 4).flatten(1))
        u8 = ((imgs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        pred = segmenter(u8).argmax(1)
        k = k or int(segmenter(u8[:1]).shape[1])
        target = pseudo - args.label_offset
        target[(pseudo == model.data_preprocessor.ignore_index) | (target < 0)] = -1
        counted += int((target >= 0).sum())
        total += target.numel()
        # pseudo labels as the prediction, the segmenter as the truth, on labelled pixels
        truth = pred.clone()
        truth[target < 0] = -1
        areas = areas + iou_areas(target.clamp(min=0).numpy(), truth.numpy(), k)
        counts = np.bincount(pred.reshape(-1).numpy(), minlength=k)
        sample_pixels = counts if sample_pixels is None else sample_pixels + counts
    iou, miou, acc = iou_from_areas(areas)
    ceiling = None
    if args.ceiling:
        ceiling = prior_ceiling(model, cfg, segmenter, args, k)
    w, w_hat, x = torch.cat(ws), torch.cat(w_hats), torch.cat(pooled)
    x = torch.cat([x, torch.ones(len(x), 1)], 1)
    half = len(x) // 2
    a, b = x[:half], w[:half]
    coef = torch.linalg.solve(a.T @ a + 10 * torch.eye(a.shape[1]), a.T @ b)
    latent_mse = dict(
        encoder=float((w_hat - w[:, None]).pow(2).mean()),
        w_avg=float((w - model.latent_avg).pow(2).mean()),
        ridge_4x4=float((x[half:] @ coef - w[half:]).pow(2).mean()))
    names = list(dataset.metainfo.get('classes', []))
    name = (lambda c: names[c + args.label_offset]
            if 0 <= c + args.label_offset < len(names) else str(c))
    shot_ids = set(int(v) for v in labels.unique().tolist()
                   if v != model.data_preprocessor.ignore_index and v >= args.label_offset)
    in_samples = [c for c in range(k) if sample_pixels[c] / sample_pixels.sum() >= 0.005]
    return dict(
        run=run, mode=model.mode, shots=len(dataset), num_samples=args.num_samples,
        feature_layers=list(model.feature_layers),
        inversion_mse=[round(float(v), 4) for v in out['mse']],
        miou=round(miou, 2), acc=round(acc, 2), coverage=round(counted / total, 4),
        classes_in_shots=sorted(name(c - args.label_offset) for c in shot_ids),
        classes_in_samples=sorted(name(c) for c in in_samples),
        latent_mse={k: round(v, 4) for k, v in latent_mse.items()},
        ceiling_miou=ceiling,
        iou={name(c): (None if not np.isfinite(v) else round(float(v), 1))
             for c, v in enumerate(iou)}, num_labels=num_labels)


@torch.no_grad()
def prior_ceiling(model, cfg, segmenter, args, k):
    """mIoU of the reconstructions of the first ``args.ceiling`` test images (inverted with the
    run's options) against their label maps."""
    from mmengine.dataset import pseudo_collate

    from catgen.evaluation.metrics.segmentation_miou import iou_areas, iou_from_areas
    from catgen.models.latent_inversion import build_perceptual, invert_images
    from catgen.registry import DATASETS
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    n = min(args.ceiling, len(dataset))
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(n)]), False)
    inputs = data['inputs']
    opts = dict(model.inversion)
    perceptual = build_perceptual(opts.pop('perceptual', None))
    with torch.enable_grad():
        latents, _ = invert_images(model.generator, inputs['img'], model.latent_avg,
                                   perceptual=perceptual, progress=False, **opts)
    gen = model.generator
    stored = [getattr(gen.noises, f'noise_{i}') for i in range(gen.num_layers)]
    recon = gen(None, latents, noise=stored, input_is_latent=True)
    u8 = ((recon.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    pred = segmenter(u8).argmax(1)
    target = inputs['label'] - args.label_offset
    target[(inputs['label'] == model.data_preprocessor.ignore_index) | (target < 0)] = -1
    _, miou, _ = iou_from_areas(iou_areas(pred.numpy(), target.numpy(), k))
    return round(miou, 2)


def main(argv=None):
    args = parse_args(argv)
    from catgen.pretrained import MMSegSegmenter
    from catgen.utils.io import write_text_atomic
    from catgen.utils.setup_env import setup_env
    setup_env()
    segmenter = MMSegSegmenter(args.segmenter_config, args.segmenter_checkpoint)
    results = []
    for run in args.runs:
        r = measure(run, segmenter, args)
        print(f"{run}: {r['mode']}, {r['shots']} shots: pseudo-label mIoU {r['miou']} "
              f"acc {r['acc']} coverage {r['coverage']}; latent MSE {r['latent_mse']}; "
              f"prior ceiling mIoU {r['ceiling_miou']}")
        results.append(r)
    write_text_atomic(args.out, json.dumps(results, indent=1) + '\n')
    print(f'written {args.out}')
    return results


if __name__ == '__main__':
    main()
