"""How many labelled pairs does SIS-UG's semantic mapper need? Proxy-mask agreement vs pairs.

The mapper turns a user mask into a proxy mask. Where the truth exists, its output can be
scored: held-out labelled images (the first ``--num-val`` test images) are inverted into the
prior, and the proxy masks of their inversions are the targets the mapper should produce from
their label maps. For each number of labelled pairs N (``--pairs``; the nested few-shot subsets
of the config's training set, seed 0), a fresh mapper (the config's) is trained on N inverted
training images exactly as stage 2 trains it (``--iters`` of batch ``--batch-size``, Adam
``--lr``, random flips), and scored on the held-out ones:

- ``accuracy``: the fraction of proxy-mask pixels it gets right;
- ``miou``: mean IoU over the clusters present in the held-out proxy masks;
- ``lookup_accuracy`` / ``lookup_miou`` (label-map inputs only): a per-class lookup table
  fitted on the same N pairs (every class -> its most frequent cluster; unseen classes -> the
  most frequent cluster overall), scored the same way: what the network adds over a table.

Inversions are cached in ``--cache`` (one file for the union of the training subsets and the
held-out images). The stage-1 rearranger and proxy-mask centres come from
``--rearranger-checkpoint`` (default: the config's).

    python tools/benchmarks/sisug_mapper_accuracy.py \
        configs/sis-ug/sis-ug_mapper_synthscenes-source_5shot.py --pairs 1 2 5 10 25 \
        --out docs/results/sis_ug/mapper_accuracy.json --plot docs/images/sis_ug_mapper_accuracy.png
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np
import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='a SIS-UG stage-2 (mapper) config')
    p.add_argument('--rearranger-checkpoint', default=None,
                   help="the stage-1 checkpoint (default: the config's rearranger_checkpoint)")
    p.add_argument('--pairs', type=int, nargs='+', default=[1, 2, 5, 10, 25])
    p.add_argument('--num-val', type=int, default=64, help='held-out test images inverted')
    p.add_argument('--iters', type=int, default=1000)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cache', default=None, help='inversion cache file (default: next to --out)')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   metavar='KEY=VALUE')
    p.add_argument('--out', required=True, help='JSON file to write')
    p.add_argument('--plot', default=None, help='PNG of accuracy and mIoU vs pairs')
    return p.parse_args(argv)


def cluster_miou(pred, truth, k):
    """Mean IoU over the clusters present in ``truth`` (int arrays of one shape)."""
    ious = []
    for c in range(k):
        t, p = truth == c, pred == c
        if t.any():
            ious.append((t & p).sum() / (t | p).sum())
    return float(np.mean(ious)) * 100


def lookup_table(labels, masks, num_classes, k):
    """Per-class most frequent cluster of the pairs (labels at the proxy size)."""
    counts = np.zeros((num_classes + 1, k), np.int64)
    lab = np.where(labels >= num_classes, num_classes, labels)  # 255 -> the extra row
    np.add.at(counts, (lab.reshape(-1), masks.reshape(-1)), 1)
    table = counts.argmax(1)
    table[counts.sum(1) == 0] = counts.sum(0).argmax()
    return table


def train_mapper(model, inputs, masks, args):
    """A fresh mapper (the config's initialisation, seeded) trained as stage 2 trains it."""
    torch.manual_seed(args.seed)
    mapper = type(model.mapper)(model.mapper.in_channels, model.num_clusters,
                                model.mapper.input_size, model.mapper.output_size,
                                **model.mapper_cfg)
    opt = torch.optim.Adam(mapper.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    mapper.train()
    for _ in range(args.iters):
        idx = torch.randint(len(masks), (args.batch_size,), generator=g)
        flip = torch.rand(args.batch_size, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], inputs[idx].flip(-1), inputs[idx])
        m = torch.where(flip[:, None, None], masks[idx].flip(-1), masks[idx])
        opt.zero_grad()
        F.cross_entropy(mapper(x), m).backward()
        opt.step()
    return mapper.eval()


def main(argv=None):
    args = parse_args(argv)
    from mmengine.dataset import pseudo_collate
    from mmengine.utils import ProgressBar

    from catgen.registry import DATASETS, MODELS
    from catgen.utils.config import load_config
    from catgen.utils.io import write_text_atomic
    from catgen.utils.setup_env import setup_env
    setup_env()
    cfg = load_config(args.config, args.cfg_options)
    if cfg.model.get('type') != 'SISUGSynthesizer':
        raise ValueError(f'{args.config} is not a SIS-UG config (model.type '
                         f'{cfg.model.get("type")!r})')
    model_cfg = dict(cfg.model, train_part='mapper')
    if args.rearranger_checkpoint:
        model_cfg['rearranger_checkpoint'] = args.rearranger_checkpoint
    if model_cfg.get('rearranger_checkpoint') is None:
        raise ValueError('the mapper needs the stage-1 rearranger and centres: pass '
                         '--rearranger-checkpoint (a stage-1 iter_<n>.pth)')
    model = MODELS.build(model_cfg).eval()
    model.mapper_cfg = {k: v for k, v in dict(cfg.model.mapper).items()
                        if k in ('width', 'num_blocks')}
    pre = model.data_preprocessor

    def load(dataset_cfg, n):
        dataset = DATASETS.build(dataset_cfg)
        n = min(n, len(dataset))
        data = pre(pseudo_collate([dataset[i] for i in range(n)]), False)['inputs']
        labels, _ = model.conditioning(data)
        return data['img'], labels

    most = max(args.pairs)
    train_imgs, train_labels = load(dict(cfg.train_dataloader.dataset, num_shots=most), most)
    val_imgs, val_labels = load(cfg.test_dataloader.dataset, args.num_val)
    cache = args.cache or osp.splitext(args.out)[0] + '_inversion.pth'
    print(f'inverting {len(train_imgs)} training and {len(val_imgs)} held-out images '
          f'(cache {cache})')
    latents, mse, _ = model.invert_cached(torch.cat([train_imgs, val_imgs]), cache)
    with torch.no_grad():
        feats, _ = model.state(latents, model.stored_noise())
        masks = model.proxy_masks(feats)
    train_masks, val_masks = masks[:len(train_imgs)], masks[len(train_imgs):]
    train_inputs = model.mapper_input_from_labels(train_labels)
    val_inputs = model.mapper_input_from_labels(val_labels)
    k = model.num_clusters
    r = model.proxy_resolution
    small = (F.interpolate(torch.cat([train_labels, val_labels])[:, None].float(), size=(r, r),
                           mode='nearest')[:, 0].long().numpy())
    results = []
    bar = ProgressBar(len(args.pairs))
    for n in sorted(args.pairs):
        mapper = train_mapper(model, train_inputs[:n], train_masks[:n], args)
        with torch.no_grad():
            pred = mapper(val_inputs).argmax(1).numpy()
        truth = val_masks.numpy()
        row = dict(pairs=n, accuracy=round(float((pred == truth).mean()) * 100, 2),
                   miou=round(cluster_miou(pred, truth, k), 2))
        if model.mapper_input == 'seg':
            table = lookup_table(small[:n], train_masks[:n].numpy(), pre.num_classes, k)
            val_small = small[len(train_imgs):]
            look = table[np.where(val_small >= pre.num_classes, pre.num_classes, val_small)]
            row.update(lookup_accuracy=round(float((look == truth).mean()) * 100, 2),
                       lookup_miou=round(cluster_miou(look, truth, k), 2))
        results.append(row)
        bar.update()
    print()
    report = dict(config=args.config, rearranger_checkpoint=model_cfg['rearranger_checkpoint'],
                  mapper_input=model.mapper_input, num_clusters=k, proxy_resolution=r,
                  num_val=len(val_imgs), iters=args.iters, batch_size=args.batch_size,
                  lr=args.lr, seed=args.seed,
                  inversion_mse=dict(train=round(float(mse[:len(train_imgs)].mean()), 4),
                                     val=round(float(mse[len(train_imgs):].mean()), 4)),
                  chance_accuracy=round(float(np.bincount(val_masks.reshape(-1).numpy(),
                                                          minlength=k).max()
                                              / val_masks.numel()) * 100, 2),
                  results=results)
    write_text_atomic(args.out, json.dumps(report, indent=2) + '\n')
    for row in results:
        print(row)
    if args.plot:
        plot(results, report, args.plot)
    return report


def plot(results, report, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from catgen.utils.io import atomic_write
    n = [row['pairs'] for row in results]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(n, [row['accuracy'] for row in results], 'o-', label='mapper: pixel accuracy')
    ax.plot(n, [row['miou'] for row in results], 's-', label='mapper: cluster mIoU')
    if 'lookup_accuracy' in results[0]:
        ax.plot(n, [row['lookup_accuracy'] for row in results], 'o--', color='gray',
                label='class lookup: accuracy')
        ax.plot(n, [row['lookup_miou'] for row in results], 's--', color='silver',
                label='class lookup: mIoU')
    ax.axhline(report['chance_accuracy'], color='k', lw=0.8, ls=':',
               label='most frequent cluster')
    ax.set_xscale('log')
    ax.set_xticks(n)
    ax.set_xticklabels([str(v) for v in n])
    ax.set_xlabel('labelled pairs')
    ax.set_ylabel('% (held-out proxy masks)')
    ax.set_title(f"SIS-UG mapper, k = {report['num_clusters']}, "
                 f"{report['num_val']} held-out images", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format='png', dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    main()
