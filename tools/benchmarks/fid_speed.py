"""Speed of catgen's FID (feature extraction + distance) vs pytorch-fid's command line, on CPU.

    python tools/benchmarks/fid_speed.py [--data data/synthscenes] [--num-images 200]
        [--threads 1] [--batch-size 50] [--num-workers 0] [--out docs/results/fid_speed.json]

Two folders of ``--num-images`` SynthScenes target val images each (64 x 64 PNGs: val images
``0..N-1`` and ``N..2N-1``, copied to a temporary directory) are compared by

- pytorch-fid's CLI: ``python -m pytorch_fid DIR1 DIR2 --device cpu --batch-size B
  --num-workers W``;
- catgen: this script in a subprocess (``--worker DIR1 DIR2``): ``InceptionV3FeatureExtractor``
  (BatchNorm folded, channels_last) on the same images read the same way (PIL, RGB, sorted file
  names), then :func:`catgen.evaluation.metrics.fid.fid_from_features`.

Both run once, one after the other, as separate processes with the same environment
(``OMP_NUM_THREADS`` = ``--threads``, default 1: one core of a shared machine), and both resize
to 299 x 299. The FID Inception weights cannot be downloaded here, so both load the same
**random** weights (:func:`~catgen.evaluation.feature_extractors.inception_v3.
write_random_inception_weights`) from a temporary ``TORCH_HOME``'s hub cache, where pytorch-fid
looks for ``pt_inception-2015-12-05-6726825d.pth``; speed does not depend on the weights' values.

Reported: the wall time of each whole process (``wall_s``: start-up, imports, model, reading,
features, distance), the feature-extraction time of each (pytorch-fid's from its tqdm bars,
whole seconds; catgen's measured inside the worker), both FID values and their relative
difference, ``ratio_wall`` = pytorch-fid / catgen and ``ratio_features`` likewise (> 1: catgen
faster), the 1-minute load average before each run. Target: catgen at least as fast as the CLI
(``ratio_wall >= 1``). Results are printed and written atomically as JSON.
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import json  # noqa: E402
import os.path as osp  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

IMAGE_EXTENSIONS = ('bmp', 'jpg', 'jpeg', 'pgm', 'png', 'ppm', 'tif', 'tiff', 'webp')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='data/synthscenes')
    p.add_argument('--num-images', type=int, default=200)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=50)
    p.add_argument('--num-workers', type=int, default=0)
    p.add_argument('--out', default='docs/results/fid_speed.json')
    p.add_argument('--worker', nargs=2, metavar='DIR', help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------------ the catgen side
def list_images(folder):
    """pytorch-fid's file list: every image file of ``folder``, sorted as it sorts them."""
    from pathlib import Path
    path = Path(folder)
    return sorted(f for ext in IMAGE_EXTENSIONS for f in path.glob(f'*.{ext}'))


def worker(dirs, batch_size):
    """In a fresh process: FID of two folders with catgen; prints one JSON line of timings."""
    t0 = time.perf_counter()
    import warnings

    import numpy as np
    import torch
    from PIL import Image

    from catgen.evaluation.feature_extractors import InceptionV3FeatureExtractor
    from catgen.evaluation.metrics.fid import fid_from_features
    out = {'import_s': time.perf_counter() - t0}
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random weights: "not the official FID Inception file"
        ext = InceptionV3FeatureExtractor()
    out['build_s'] = time.perf_counter() - t
    feats, t = [], time.perf_counter()
    for folder in dirs:
        files, rows = list_images(folder), []
        for i in range(0, len(files), batch_size):
            batch = np.stack([np.asarray(Image.open(f).convert('RGB'))
                              for f in files[i:i + batch_size]])
            rows.append(ext(torch.from_numpy(batch).permute(0, 3, 1, 2)).numpy())
        feats.append(np.concatenate(rows).astype(np.float64))
    out['features_s'] = time.perf_counter() - t
    t = time.perf_counter()
    out['fid'] = fid_from_features(*feats)
    out['fid_s'] = time.perf_counter() - t
    out['total_in_process_s'] = time.perf_counter() - t0
    out['extractor'] = ext.name
    print(json.dumps(out))


# ------------------------------------------------------------------------ the benchmark
def _tqdm_seconds(stderr):
    """Elapsed whole seconds of each finished tqdm bar in ``stderr``.

    Without a terminal tqdm prints every refresh of a bar (``0/N [00:00<?`` first, then
    ``n/N [mm:ss<...``, the finished state possibly twice): a bar starts at ``0/N`` and its time
    is the last elapsed value printed at ``N/N``.
    """
    values = []
    for m in re.finditer(r'(\d+)/(\d+) \[(?:(\d+):)?(\d+):(\d+)<', stderr):
        n, total, h, mm, ss = m.groups()
        if n == '0' or not values:
            values.append(None)
        if n == total:
            values[-1] = int(h or 0) * 3600 + int(mm) * 60 + int(ss)
    return [v for v in values if v is not None]


def prepare_folders(args, tmp):
    src = osp.join(args.data, 'target', 'images', 'val')
    files = sorted(f for f in os.listdir(src) if f.endswith('.png'))
    need = 2 * args.num_images
    if len(files) < need:
        raise SystemExit(f'{src} has {len(files)} images; --num-images {args.num_images} needs '
                         f'{need} (python tools/prepare_synthscenes.py makes the full set).')
    dirs = []
    for k in range(2):
        d = osp.join(tmp, f'set{k + 1}')
        os.makedirs(d)
        for f in files[k * args.num_images:(k + 1) * args.num_images]:
            shutil.copy(osp.join(src, f), d)
        dirs.append(d)
    return dirs


def run(args):
    import torch

    from catgen.evaluation.feature_extractors.inception_v3 import (
        FID_WEIGHTS_FILENAME, write_random_inception_weights)
    result = {'num_images_per_folder': args.num_images, 'resolution': 64, 'resized_to': 299,
              'threads': args.threads, 'batch_size': args.batch_size,
              'num_workers': args.num_workers, 'device': 'cpu', 'torch': torch.__version__,
              'python': platform.python_version(), 'machine': platform.machine(),
              'cpu_count': os.cpu_count(),
              'weights': 'random (seed 0) FID-Inception weights in a temporary TORCH_HOME hub '
                         'cache: the official pt_inception-2015-12-05 file is not available '
                         'offline; speed does not depend on the weight values',
              'data': 'SynthScenes target val images 0..N-1 (set1) and N..2N-1 (set2)'}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = prepare_folders(args, tmp)
        home = osp.join(tmp, 'torch_home')
        write_random_inception_weights(osp.join(home, 'hub', 'checkpoints',
                                                FID_WEIGHTS_FILENAME), seed=0)
        env = dict(os.environ, TORCH_HOME=home, OMP_NUM_THREADS=str(args.threads),
                   OPENBLAS_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
                   PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))

        cmd = [sys.executable, '-m', 'pytorch_fid', *dirs, '--device', 'cpu',
               '--batch-size', str(args.batch_size), '--num-workers', str(args.num_workers)]
        load = os.getloadavg()[0]
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f'pytorch-fid failed:\n{proc.stderr[-3000:]}')
        match = re.search(r'FID:\s+([-+0-9.eE]+)', proc.stdout)
        bars = _tqdm_seconds(proc.stderr)
        result['pytorch_fid'] = {
            'command': 'python -m pytorch_fid SET1 SET2 --device cpu --batch-size '
                       f'{args.batch_size} --num-workers {args.num_workers}',
            'wall_s': round(wall, 2), 'fid': float(match.group(1)) if match else None,
            'features_s_from_tqdm': bars, 'features_s': sum(bars) if bars else None,
            'load_avg_1min_before': round(load, 2)}

        cmd = [sys.executable, osp.abspath(__file__), '--worker', *dirs,
               '--batch-size', str(args.batch_size)]
        load = os.getloadavg()[0]
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f'catgen worker failed:\n{proc.stderr[-3000:]}')
        inner = json.loads(proc.stdout.strip().splitlines()[-1])
        result['catgen'] = {'wall_s': round(wall, 2),
                            **{k: (round(v, 3) if isinstance(v, float) and k != 'fid' else v)
                               for k, v in inner.items()},
                            'load_avg_1min_before': round(load, 2)}
    pf, cg = result['pytorch_fid'], result['catgen']
    result['ratio_wall'] = round(pf['wall_s'] / cg['wall_s'], 3)
    if pf['features_s']:
        result['ratio_features'] = round(pf['features_s'] / cg['features_s'], 3)
    if pf['fid'] is not None:
        result['fid_rel_diff'] = abs(cg['fid'] - pf['fid']) / abs(pf['fid'])
    result['meets_target'] = result['ratio_wall'] >= 1.0
    result['load_avg_1min_after'] = round(os.getloadavg()[0], 2)
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker, args.batch_size)
    import warnings
    warnings.filterwarnings('ignore')
    result = run(args)
    text = json.dumps(result, indent=1)
    print(text)
    from catgen.utils.io import write_text_atomic
    write_text_atomic(args.out, text + '\n')
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()
