"""Restyled SynthScenes: the source scenes rendered in another style, as unconditional target
domains for few-shot adaptation of a generator trained on the source images (StyleGAN2's
setting; docs/synthscenes.md, "Unconditional domains").

Two styles, both pure functions of a source scene (image and label map):

- ``'night'``: the same scene at night: colours darkened with a gamma of 1.8 and tinted blue
  (``rgb ** 1.8 * (0.45, 0.55, 1.0) * 0.7``); the layout and textures are the source's, the
  colour statistics are not;
- ``'sketch'``: a pen drawing on paper: ink lines on every class boundary, diagonal hatching
  whose density follows the scene's luminance (dark: every 2nd diagonal, mid: every 4th,
  light: none), no colour.

The scenes are NEW source-domain scenes (base seed ``seed + STYLE_SEED_OFFSET``), not the
source training images, so that the target images are held out from the source model.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .generate import _save_png, generate_scene

STYLES = ('night', 'sketch')
#: the styled scenes' base seed is the source set's plus this offset
STYLE_SEED_OFFSET = 7919
PAPER = np.array([245, 240, 228], np.float32)
INK = np.array([38, 40, 52], np.float32)


def restyle(img, label, style):
    """Render a scene in ``style``.

    Args:
        img: uint8[H, W, 3] RGB.
        label: uint8[H, W] class ids (boundaries of the sketch style).
        style: one of :data:`STYLES`.

    Returns:
        uint8[H, W, 3].
    """
    f = img.astype(np.float32) / 255
    if style == 'night':
        out = f ** 1.8 * np.array([0.45, 0.55, 1.0], np.float32) * 0.7
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
    if style == 'sketch':
        h, w = label.shape
        edge = np.zeros((h, w), bool)
        edge[:, :-1] |= label[:, :-1] != label[:, 1:]
        edge[:-1, :] |= label[:-1, :] != label[1:, :]
        lum = f @ np.array([0.299, 0.587, 0.114], np.float32)
        diag = (np.arange(h)[:, None] + np.arange(w)[None, :])
        hatch = ((lum < 0.33) & (diag % 2 == 0)) | ((lum >= 0.33) & (lum < 0.6) & (diag % 4 == 0))
        ink = edge | hatch
        out = np.where(ink[..., None], INK, PAPER)
        return out.astype(np.uint8)
    raise ValueError(f'unknown style {style!r}; known: {STYLES}')


def styled_scene(style, split, index, seed=0, resolution=64):
    """Image ``index`` of a styled split: uint8[R, R, 3], a pure function of the arguments."""
    img, label = generate_scene('source', split, index, seed + STYLE_SEED_OFFSET, resolution)
    return restyle(img, label, style)


def write_styles(out_dir, styles=STYLES, num_train=100, num_val=200, seed=0, resolution=64):
    """Write ``<out_dir>/<style>/images/{train,val}/<index:06d>.png`` for every style.

    Idempotent (``<out_dir>/settings.json``, written last, records the settings) and crash-safe
    (written into ``<out_dir>.tmp-<pid>``, renamed when complete).

    Returns:
        ``(out_dir: Path, written: bool)``.
    """
    settings = dict(styles=list(styles), num_train=int(num_train), num_val=int(num_val),
                    seed=int(seed), resolution=int(resolution), seed_offset=STYLE_SEED_OFFSET)
    for style in styles:
        if style not in STYLES:
            raise ValueError(f'unknown style {style!r}; known: {STYLES}')
    out_dir = Path(out_dir)
    record = out_dir / 'settings.json'
    if record.is_file() and json.loads(record.read_text()) == settings:
        return out_dir, False
    if out_dir.exists() and not set(os.listdir(out_dir)) <= set(STYLES) | {'settings.json'}:
        raise FileExistsError(f'{out_dir} exists and is not a styled SynthScenes folder; choose '
                              'another --out or remove it.')
    tmp = out_dir.with_name(f'{out_dir.name}.tmp-{os.getpid()}')
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for style in styles:
            for split, count in (('train', num_train), ('val', num_val)):
                folder = tmp / style / 'images' / split
                folder.mkdir(parents=True)
                for i in range(count):
                    _save_png(folder / f'{i:06d}.png',
                              styled_scene(style, split, i, seed, resolution))
        (tmp / 'settings.json').write_text(json.dumps(settings, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir, True
