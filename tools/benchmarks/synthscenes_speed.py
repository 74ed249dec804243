"""SynthScenes generation speed on one core.

    python tools/benchmarks/synthscenes_speed.py [--num 1000] [--resolution 64]
                                                 [--out docs/results/synthscenes_speed.json]
                                                 [--scratch data]

Pins the process to one CPU and one thread, generates ``--num`` scenes per domain in memory,
then again with both PNGs (image and label map) encoded in memory, then again with both PNGs
written to a temporary folder inside
``--scratch`` (default ``data/``, where the set is usually written). Reports images/s
by wall clock, by CPU time of this process (the per-core rate, less disturbed on a shared,
loaded machine) and by wall clock over the fastest of 5 blocks; prints the results and writes
them atomically as JSON.
"""
import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ[_var] = '1'

import argparse  # noqa: E402
import json  # noqa: E402
import os.path as osp  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import numpy as np  # noqa: E402


def _pin_one_core():
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def _measure(fn, num, blocks=5):
    """Run ``fn(start, stop)`` over ``num`` images in ``blocks`` equal blocks; the rates of the
    whole run, and of the fastest block (the least disturbed by other load on the machine)."""
    size = max(1, num // blocks)
    walls, cpus = [], []
    for start in range(0, num, size):
        stop = min(num, start + size)
        wall, cpu = time.perf_counter(), time.process_time()
        fn(start, stop)
        walls.append((time.perf_counter() - wall, stop - start))
        cpus.append(time.process_time() - cpu)
    wall, cpu = sum(w for w, _ in walls), sum(cpus)
    return {'images': num, 'wall_s': round(wall, 4), 'cpu_s': round(cpu, 4),
            'images_per_s_wall': round(num / wall, 1), 'images_per_s_cpu': round(num / cpu, 1),
            'images_per_s_wall_best_block': round(max(n / w for w, n in walls), 1)}


def run(num=1000, resolution=64, scratch='data'):
    from catgen.datasets.synthscenes import generate_scene
    from catgen.datasets.synthscenes.generate import _save_png, png_bytes

    results = {'resolution': resolution, 'cpu_pinned': _pin_one_core(),
               'numpy': np.__version__, 'python': platform.python_version(),
               'machine': platform.machine(), 'png_scratch_dir': scratch, 'load_avg_1min': None}
    try:
        results['load_avg_1min'] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    generate_scene('source', 'train', 0, resolution=resolution)  # warm the per-size caches
    for domain in ('source', 'target'):
        def in_memory(start, stop, domain=domain):
            for i in range(start, stop):
                generate_scene(domain, 'train', i, resolution=resolution)

        results[f'{domain}_in_memory'] = _measure(in_memory, num)

        def png_encoded(start, stop, domain=domain):
            for i in range(start, stop):
                img, label = generate_scene(domain, 'train', i, resolution=resolution)
                png_bytes(img)
                png_bytes(label)

        results[f'{domain}_png_encoded_in_memory'] = _measure(png_encoded, num)
        os.makedirs(scratch, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix='.synthscenes_speed-') as tmp:
            def with_png(start, stop, domain=domain):
                for i in range(start, stop):
                    img, label = generate_scene(domain, 'train', i, resolution=resolution)
                    _save_png(osp.join(tmp, f'{i:06d}.png'), img)
                    _save_png(osp.join(tmp, f'{i:06d}_label.png'), label)

            results[f'{domain}_with_png'] = _measure(with_png, num)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description='SynthScenes generation speed on one core.')
    parser.add_argument('--num', type=int, default=1000, help='scenes per domain and mode')
    parser.add_argument('--resolution', type=int, default=64)
    parser.add_argument('--out', default='docs/results/synthscenes_speed.json')
    parser.add_argument('--scratch', default='data',
                        help='where the PNGs are written (a temporary folder inside it, removed '
                             'after); use the disk the data set will live on')
    args = parser.parse_args(argv)
    results = run(args.num, args.resolution, args.scratch)
    from catgen.utils.io import write_text_atomic
    text = json.dumps(results, indent=2) + '\n'
    write_text_atomic(args.out, text)
    print(text, end='')
    print(f'written to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
