"""Generate SynthScenes images, and write a whole set to disk in the real loaders' layout.

On disk::

    <out>/classes.json                                  (written last)
    <out>/{source,target}/images/{train,val}/000000.png     RGB
    <out>/{source,target}/annotations/{train,val}/000000.png  uint8 L, ids 0..N-1, 255 = ignore
    <out>/target/few_shot/shots_{k}.txt                 nested few-shot subsets of target train
"""
import json
import os
import shutil
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..few_shot import select_few_shot
from .layout import make_layout
from .recipes import (DOMAINS, NAME, SHOTS, SPLITS, VERSION, check_domain, check_split,
                      classes_json)
from .render import render_scene

MIN_RESOLUTION = 16
_SETTING_KEYS = ('seed', 'resolution', 'num_train_source', 'num_val_source', 'num_train_target',
                 'num_val_target', 'subset_seed')


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f'{name} must be an int >= {low}, got {value!r}.')
    return int(value)


def scene_rng(domain, split, index, seed=0):
    """The ``numpy.random.Generator`` (PCG64) of one scene, seeded from
    ``SeedSequence([seed, domain_id, split_id, index])`` (ids: position in DOMAINS / SPLITS)."""
    check_domain(domain)
    check_split(split)
    seed = _check_int('seed', seed, 0)
    index = _check_int('index', index, 0)
    ss = np.random.SeedSequence([seed, DOMAINS.index(domain), SPLITS.index(split), index])
    return np.random.Generator(np.random.PCG64(ss))


def generate_scene(domain, split, index, seed=0, resolution=64):
    """Image ``index`` of a SynthScenes split: a pure function of the arguments.

    Args:
        domain: ``'source'`` or ``'target'``.
        split: ``'train'`` or ``'val'``.
        index: image index (>= 0); the file stem is ``f'{index:06d}'``.
        seed: base seed of the whole set.
        resolution: image side in pixels (>= 16; 64 default, 128 and 256 supported).

    Returns:
        ``(img: uint8[R, R, 3] RGB, label: uint8[R, R])``, label ids index the domain's classes.
    """
    resolution = _check_int('resolution', resolution, MIN_RESOLUTION)
    rng = scene_rng(domain, split, index, seed)
    inst, inst_classes = make_layout(rng, domain, resolution)
    img = render_scene(rng, inst, inst_classes, domain)
    label = inst_classes.astype(np.uint8)[inst]
    return img, label


def make_settings(resolution=64, seed=0, num_train_source=2000, num_val_source=200,
                  num_train_target=1000, num_val_target=500, subset_seed=0):
    """The ``settings`` dict stored in ``classes.json`` (validated)."""
    settings = {'seed': _check_int('seed', seed, 0),
                'resolution': _check_int('resolution', resolution, MIN_RESOLUTION),
                'num_train_source': _check_int('num_train_source', num_train_source, 1),
                'num_val_source': _check_int('num_val_source', num_val_source, 1),
                'num_train_target': _check_int('num_train_target', num_train_target, 1),
                'num_val_target': _check_int('num_val_target', num_val_target, 1),
                'subset_seed': _check_int('subset_seed', subset_seed, 0)}
    assert tuple(settings) == _SETTING_KEYS
    return settings


def _counts(settings):
    return {(d, s): settings[f'num_{s}_{d}'] for d in DOMAINS for s in SPLITS}


def is_complete(out_dir, settings):
    """True if ``out_dir`` holds a complete set written with ``settings``."""
    out_dir = Path(out_dir)
    try:
        meta = json.loads((out_dir / 'classes.json').read_text())
    except (OSError, ValueError):
        return False
    if (not isinstance(meta, dict) or meta.get('name') != NAME
            or meta.get('version') != VERSION or meta.get('settings') != settings):
        return False
    for (domain, split), n in _counts(settings).items():
        for kind in ('images', 'annotations'):
            folder = out_dir / domain / kind / split
            try:
                if len(os.listdir(folder)) != n:
                    return False
            except OSError:
                return False
    return True


def _png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png_bytes(array, level=1):
    """Encode ``uint8[H, W, 3]`` (RGB) or ``uint8[H, W]`` (L) as a PNG file's bytes.

    A minimal encoder (8-bit, no interlace, filter "none", zlib ``level``): about twice as fast
    as Pillow's on these small noisy images, which it matches in size. Any PNG reader decodes it.
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim == 3 and array.shape[2] == 3:
        colour_type = 2
    elif array.ndim == 2:
        colour_type = 0
    else:
        raise ValueError(f'expected uint8[H, W, 3] or uint8[H, W], got shape {array.shape}.')
    h, w = array.shape[:2]
    raw = np.zeros((h, array[0].size + 1), np.uint8)  # a 0 (filter type) before each row
    raw[:, 1:] = array.reshape(h, -1)
    return b''.join([b'\x89PNG\r\n\x1a\n',
                     _png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, colour_type, 0, 0, 0)),
                     _png_chunk(b'IDAT', zlib.compress(raw.tobytes(), level)),
                     _png_chunk(b'IEND', b'')])


def _save_png(path, array):
    with open(path, 'wb') as f:
        f.write(png_bytes(array))


def _write_range(root, domain, split, start, stop, seed, resolution):
    root = Path(root)
    img_dir = root / domain / 'images' / split
    ann_dir = root / domain / 'annotations' / split
    for i in range(start, stop):
        img, label = generate_scene(domain, split, i, seed, resolution)
        _save_png(img_dir / f'{i:06d}.png', img)
        _save_png(ann_dir / f'{i:06d}.png', label)
    return stop - start


def _replaceable(path):
    """An existing ``path`` may be replaced only if it is empty or looks like a SynthScenes set."""
    if not path.is_dir():
        return False
    return set(os.listdir(path)) <= {'classes.json', 'source', 'target'}


def write_synthscenes(out_dir, resolution=64, seed=0, num_train_source=2000, num_val_source=200,
                      num_train_target=1000, num_val_target=500, progress=True, num_workers=1,
                      subset_seed=0, chunk_size=64):
    """Write a SynthScenes set to ``out_dir``, crash-safely and idempotently.

    If ``out_dir`` already holds a complete set with the same settings nothing is written.
    Otherwise everything goes into ``<out_dir>.tmp-<pid>`` (``classes.json`` last), which is
    renamed to ``out_dir`` when complete; an existing incomplete or different SynthScenes set at
    ``out_dir`` is replaced, any other existing folder is an error.

    Returns:
        ``(out_dir: Path, written: bool)``; ``written`` is False when the set was already there.
    """
    settings = make_settings(resolution, seed, num_train_source, num_val_source,
                             num_train_target, num_val_target, subset_seed)
    num_workers = _check_int('num_workers', num_workers, 1)
    out_dir = Path(out_dir)
    if is_complete(out_dir, settings):
        return out_dir, False
    if out_dir.exists() and not _replaceable(out_dir):
        raise FileExistsError(
            f'{out_dir} exists and is not a SynthScenes folder (expected only classes.json, '
            f'source/ and target/ in it); choose another --out or remove it.')
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f'{out_dir.name}.tmp-{os.getpid()}')
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_all(tmp, settings, progress, num_workers, chunk_size)
        if out_dir.exists():
            old = out_dir.with_name(f'{out_dir.name}.old-{os.getpid()}')
            os.rename(out_dir, old)
            os.rename(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir, True


def _write_all(root, settings, progress, num_workers, chunk_size):
    counts = _counts(settings)
    for domain, split in counts:
        for kind in ('images', 'annotations'):
            (root / domain / kind / split).mkdir(parents=True, exist_ok=True)
    jobs = []
    for (domain, split), n in counts.items():
        for start in range(0, n, chunk_size):
            jobs.append((str(root), domain, split, start, min(n, start + chunk_size),
                         settings['seed'], settings['resolution']))
    total = sum(counts.values())
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc='SynthScenes', unit='img')
    try:
        if num_workers == 1:
            for job in jobs:
                done = _write_range(*job)
                if bar is not None:
                    bar.update(done)
        else:
            with ProcessPoolExecutor(max_workers=num_workers) as pool:
                for done in pool.map(_write_range, *zip(*jobs)):
                    if bar is not None:
                        bar.update(done)
    finally:
        if bar is not None:
            bar.close()
    # Few-shot subsets of the target train pool (nested by construction).
    stems = [f'{i:06d}' for i in range(settings['num_train_target'])]
    shot_dir = root / 'target' / 'few_shot'
    shot_dir.mkdir(parents=True, exist_ok=True)
    for k in SHOTS:
        if k <= len(stems):
            chosen = select_few_shot(stems, k, seed=settings['subset_seed'])
            (shot_dir / f'shots_{k}.txt').write_text(''.join(s + '\n' for s in chosen))
    # Written last: its presence (with these settings) marks the set complete.
    (root / 'classes.json').write_text(json.dumps(classes_json(settings), indent=1) + '\n')
