"""Speed of the segmenter affinity estimator: 100 SynthScenes target images at 64x64 on CPU.

    python tools/benchmarks/affinity_speed.py [--data data/synthscenes] [--num-images 100]
        [--segmenters local context] [--threads 1] [--batch-size 16] [--repeats 3]
        [--out docs/results/affinity_speed.json]

Segmenters: ``local`` = configs/segmenters/fcn_synthscenes-source-local.py (the one of
configs/affinity/segmenter_synthscenes.py), ``context`` = configs/segmenters/
fcn_synthscenes-source.py, with their checkpoints under work_dirs/segmenters/. For each, in one
process with ``--threads`` torch threads (default 1: one core):

- ``load_s``: building the segmenter and loading its weights (``init_mmseg_model``);
- ``estimate_first_call_s``: the first ``SegmenterAffinity.estimate`` of a fresh estimator
  without the cache: model loading, reading 100 images and label maps, segmenting, counting;
- ``estimate_cold_s``: the same call again with the model loaded (best of ``--repeats``), and
  its CPU time;
- ``estimate_cached_s``: a fresh estimator whose predictions come from the on-disk cache.

Importing mmsegmentation (``import_mmseg_s``, once per process) is reported apart. The target is
``estimate_first_call_s`` < 10 s. A missing checkpoint is replaced by the config's model with
random weights saved to a temporary file (speed does not depend on the weights; the JSON says
so). Results are printed and written atomically as JSON.
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import json  # noqa: E402
import os.path as osp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

TARGET_S = 10.0
SEGMENTERS = {
    'local': ('configs/segmenters/fcn_synthscenes-source-local.py',
              'zoo://fcn_synthscenes-source-local'),
    'context': ('configs/segmenters/fcn_synthscenes-source.py',
                'zoo://fcn_synthscenes-source'),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='data/synthscenes')
    p.add_argument('--num-images', type=int, default=100)
    p.add_argument('--segmenters', nargs='+', default=list(SEGMENTERS), choices=list(SEGMENTERS))
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--out', default='docs/results/affinity_speed.json')
    return p.parse_args(argv)


def _random_checkpoint(config, tmpdir):
    """Save the config's model with random weights (and SynthScenes source class names)."""
    import torch
    from mmengine.config import Config

    from catgen.utils.setup_env import guarded_default_scope
    cfg = Config.fromfile(config)
    with guarded_default_scope(None):
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        model = MODELS.build(cfg.model)
    path = osp.join(tmpdir, 'random.pth')
    classes = cfg.train_dataloader.dataset.metainfo['classes']
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': list(classes)}}}, path)
    return path


def measure(name, args, dataset, tmp):
    """The timings of one segmenter (see the module docstring)."""
    from catgen.affinity import SegmenterAffinity
    from catgen.datasets.synthscenes import SOURCE_CLASSES, TARGET_CLASSES
    from catgen.utils.setup_env import init_mmseg_model
    config, ckpt = SEGMENTERS[name]
    result = {'config': config}
    if not osp.isfile(ckpt):
        result['weights'] = f'random ({ckpt} not found; speed does not depend on the weights)'
        ckpt = _random_checkpoint(config, tmp)
    else:
        result['weights'] = ckpt
    seg = dict(type='mmseg', config=config, checkpoint=ckpt)
    t = time.perf_counter()
    init_mmseg_model(config, ckpt)
    result['load_s'] = round(time.perf_counter() - t, 3)

    est = SegmenterAffinity(segmenter=seg, dataset=dataset, use_cache=False,
                            batch_size=args.batch_size, progress=False)
    t = time.perf_counter()
    est.estimate(TARGET_CLASSES, SOURCE_CLASSES)          # loads the model on first use
    result['estimate_first_call_s'] = round(time.perf_counter() - t, 3)
    walls, cpus = [], []
    for _ in range(args.repeats):
        t, c = time.perf_counter(), time.process_time()
        est.estimate(TARGET_CLASSES, SOURCE_CLASSES)      # model loaded: read + segment + count
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    best = min(range(len(walls)), key=walls.__getitem__)
    result['estimate_cold_s'] = round(walls[best], 3)
    result['estimate_cold_cpu_s'] = round(cpus[best], 3)
    result['images_per_s'] = round(args.num_images / walls[best], 1)

    cache = osp.join(tmp, f'cache-{name}')
    SegmenterAffinity(segmenter=seg, dataset=dataset, cache_dir=cache,
                      batch_size=args.batch_size, progress=False).estimate(
                          TARGET_CLASSES, SOURCE_CLASSES)
    t = time.perf_counter()
    SegmenterAffinity(segmenter=seg, dataset=dataset, cache_dir=cache,
                      batch_size=args.batch_size, progress=False).estimate(
                          TARGET_CLASSES, SOURCE_CLASSES)
    result['estimate_cached_s'] = round(time.perf_counter() - t, 3)
    result['meets_target'] = result['estimate_first_call_s'] < TARGET_S
    return result


def run(args):
    import torch
    torch.set_num_threads(args.threads)
    from catgen.utils.setup_env import setup_env
    setup_env(init_default_scope=False)
    t = time.perf_counter()
    import mmseg.models  # noqa: F401
    import_s = time.perf_counter() - t
    dataset = dict(type='SynthScenesDataset', data_root=args.data, domain='target',
                   split='train', num_shots=args.num_images)
    result = {'num_images': args.num_images, 'resolution': 64, 'threads': args.threads,
              'batch_size': args.batch_size, 'torch': torch.__version__,
              'python': platform.python_version(), 'machine': platform.machine(),
              'cpu_count': os.cpu_count(), 'load_avg_1min': round(os.getloadavg()[0], 2),
              'import_mmseg_s': round(import_s, 3), 'target_s': TARGET_S}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.segmenters:
            result[name] = measure(name, args, dataset, tmp)
    return result


def main(argv=None):
    import warnings
    warnings.filterwarnings('ignore')
    args = parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=1)
    print(text)
    from catgen.utils.io import write_text_atomic
    write_text_atomic(args.out, text + '\n')
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
