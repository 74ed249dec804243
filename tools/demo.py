"""The main job on SynthScenes (`make demo`): few-shot transfer with CAT, on a fresh machine, no
download, 2 CPU cores.

1. prepare SynthScenes in data/synthscenes (skipped when complete);
2. train the small source OASIS (configs/oasis/oasis_synthscenes-source.py, 20 classes) unless its
   final checkpoint is already in work_dirs/;
3. estimate the class affinity target x source from class-name text embeddings (offline) with
   tools/estimate_affinity.py: matrix, heatmap, accuracy against SynthScenes' true matrix;
4. CAT: the source model behind the affinity layer, finetuned on 100 target images
   (configs/cat/oasis_synthscenes_100.py; validated on the 500 target val images at the end);
   skipped when its final checkpoint exists;
5. training-free CAT: the same without any finetuning, evaluated with tools/test.py ... none;
6. a comparison grid (label map | training-free CAT | CAT | real) of target val maps;
7. print where everything is and the metrics.

Every step is a separate command printed with `+`; rerun the demo to reuse what exists (delete a
work dir to redo its step).
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

DATA = 'data/synthscenes'
SOURCE_CFG = 'configs/oasis/oasis_synthscenes-source.py'
SOURCE_DIR = 'work_dirs/oasis_synthscenes-source'
AFFINITY_DIR = 'work_dirs/affinity_synthscenes_text'
CAT_CFG = 'configs/cat/oasis_synthscenes_100.py'
CAT_DIR = 'work_dirs/cat_oasis_synthscenes_100'
FREE_CFG = 'configs/cat/oasis_synthscenes-training-free.py'
FREE_DIR = 'work_dirs/cat_oasis_synthscenes-training-free'
NUM_GRID = 8


def run(cmd):
    print('+ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    print(f'  ({time.time() - t0:.0f} s)', flush=True)


def final_checkpoint(cfg_path, work_dir):
    from mmengine.config import Config
    max_iters = Config.fromfile(cfg_path).train_cfg.max_iters
    return osp.join(work_dir, f'iter_{max_iters}.pth')


def train_unless_done(py, cfg, work_dir, options=()):
    ckpt = final_checkpoint(cfg, work_dir)
    if osp.isfile(ckpt):
        print(f'found {ckpt} (delete it to retrain)')
        return ckpt
    resume = ['--resume'] if osp.isfile(osp.join(work_dir, 'last_checkpoint')) else []
    extra = ['--cfg-options', *options] if options else []
    run([py, 'tools/train.py', cfg, '--work-dir', work_dir] + resume + extra)
    return ckpt


def last_val_metrics(work_dir):
    """The last validation metrics logged in ``<work_dir>/<timestamp>/vis_data/scalars.json``."""
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')),
                       reverse=True):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        rows = [r for r in rows if any(k.startswith('color/') for k in r)]
        if rows:
            return {k: v for k, v in rows[-1].items() if k.startswith('color/')}
    return {}


def comparison_grid(cat_ckpt, options, out_path):
    """label map | training-free CAT | CAT | real, for the first target val maps."""
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from catgen.apis import init_synthesizer
    from catgen.models.synthesizers.base_synthesizer import to_uint8
    from catgen.registry import DATASETS
    from catgen.visualization import make_sample_grid, save_image

    cfg_options = dict(o.split('=', 1) for o in options)
    cfg_options = {k: (None if v == 'None' else v) for k, v in cfg_options.items()}
    free = init_synthesizer(FREE_CFG, None, cfg_options=cfg_options)
    cat = init_synthesizer(CAT_CFG, cat_ckpt, cfg_options=cfg_options)
    ds_cfg = Config.fromfile(CAT_CFG).test_dataloader.dataset
    dataset = DATASETS.build(ds_cfg)
    batch = pseudo_collate([dataset[i] for i in range(min(NUM_GRID, len(dataset)))])
    with torch.no_grad():
        data = cat.data_preprocessor(batch, False)
        seg = data['inputs']['seg']
        ids = list(range(seg.shape[0]))
        fakes = [to_uint8(m.synthesize(seg, sample_ids=ids)) for m in (free, cat)]
    grid = make_sample_grid(data['inputs']['label'].numpy(), torch.stack(fakes, 1).numpy(),
                            to_uint8(data['inputs']['img']).numpy(),
                            palette=np.asarray(dataset.metainfo['palette'], np.uint8))
    save_image(grid, out_path)
    return out_path


def fmt(metrics):
    return ', '.join(f'{k} {v:.4g}' if isinstance(v, float) else f'{k} {v}'
                     for k, v in metrics.items()) or '(none found)'


def main():
    t0 = time.time()
    os.chdir(ROOT)
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    py = sys.executable
    run([py, 'tools/prepare_synthscenes.py', '--out', DATA])

    source_ckpt = train_unless_done(py, SOURCE_CFG, SOURCE_DIR)
    t_source = time.time()

    affinity = osp.join(AFFINITY_DIR, 'affinity.json')
    if not osp.isfile(affinity):
        run([py, 'tools/estimate_affinity.py', '--estimator', 'text', '--synthscenes', DATA,
             '--out', AFFINITY_DIR])
    # both CAT runs read the estimated matrix (same estimator as in the configs)
    options = [f'model.transfer.source_checkpoint={source_ckpt}',
               'model.transfer.affinity=None', f'model.transfer.affinity_file={affinity}']

    cat_ckpt = train_unless_done(py, CAT_CFG, CAT_DIR, options)
    free_metrics_path = osp.join(FREE_DIR, 'metrics.json')
    run([py, 'tools/test.py', FREE_CFG, 'none', '--work-dir', FREE_DIR, '--cfg-options',
         *options])

    grid = osp.join(CAT_DIR, 'comparison.png')
    print(f'+ comparison grid -> {grid}', flush=True)
    comparison_grid(cat_ckpt, options, grid)

    with open(free_metrics_path) as f:
        free_metrics = json.load(f)
    cat_metrics = last_val_metrics(CAT_DIR)
    accuracy = osp.join(AFFINITY_DIR, 'affinity_accuracy.json')
    total = (time.time() - t0) / 60
    print(f'\n=== catgen demo done in {total:.1f} min '
          f'(after the source model: {(time.time() - t_source) / 60:.1f} min) ===')
    print(f'SynthScenes data:          {DATA}/ (classes.json, source/, target/)')
    print(f'source OASIS checkpoint:   {source_ckpt}')
    print(f'source sample grid:        {SOURCE_DIR}/samples/final.png')
    print(f'affinity (text, 11 x 20):  {affinity}, heatmap {AFFINITY_DIR}/affinity.png')
    print(f'affinity accuracy:         {accuracy}')
    print(f'CAT (100 images):          {cat_ckpt}; samples {CAT_DIR}/samples/final.png')
    print(f'comparison grid:           {grid}  (rows: label map | training-free CAT | CAT | '
          'real)')
    print(f'training-free CAT metrics: {free_metrics_path}')
    print('\nTarget val (500 images), class colour distance to the real images (lower is '
          'better):')
    print(f'  training-free CAT: {fmt(free_metrics)}')
    print(f'  CAT, 100 images:   {fmt(cat_metrics)}')


if __name__ == '__main__':
    main()
