"""Vectorised rendering of SynthScenes pixels from texture recipes (numpy only).

Each instance of the layout is one or more *units* (a mixture has two): the unit's pattern
gives a weight ``t`` in [0, 1] at its pixels (gathered by index), and the colour of a pixel is
``base + jitter + t * (color2 - base) + noise * (2u - 1)``, with a per-unit colour jitter and a
per-pixel uniform ``u`` (luminance noise), evaluated for the whole image at once from per-pixel
unit ids. Random fields that patterns sample (smooth value noise per scale, spot cells,
per-pixel uniforms) are drawn once per image, lazily, over the whole grid, so the cost of an
image hardly depends on how many regions it has. See :mod:`.recipes` for the recipe format.
"""
import math
from functools import lru_cache

import numpy as np

from ._math import F32, cos_sin, interp_coords, upsample
from .recipes import SOURCE_RECIPES, domain_classes, domain_recipes

BASE = 64  # recipe lengths are in base pixels: 1/64 of the image side


@lru_cache(maxsize=None)
def grids(res):
    """Per-resolution coordinate arrays, flattened row-major, ``float32[res * res]`` each:
    ``xb``, ``yb`` (pixel centres in base pixels) and ``xn``, ``yn`` (in [0, 1])."""
    c = (np.arange(res, dtype=F32) + F32(0.5)) * F32(BASE / res)
    yb, xb = np.meshgrid(c, c, indexing='ij')
    out = {'xb': xb.ravel(), 'yb': yb.ravel()}
    out['xn'] = out['xb'] * F32(1.0 / BASE)
    out['yn'] = out['yb'] * F32(1.0 / BASE)
    for v in out.values():
        v.flags.writeable = False
    return out


@lru_cache(maxsize=None)
def _field_coords(res, scale):
    """Interpolation coordinates of value noise with cells of ``scale`` base pixels."""
    size = int(BASE / scale) + 2
    c = (np.arange(res, dtype=F32) + F32(0.5)) * F32(BASE / res / scale)
    return size, interp_coords(c, size)


def pow2(x):
    """The power of two nearest to ``x > 0`` (geometrically), computed exactly."""
    m, e = math.frexp(float(x))  # x = m * 2 ** e, 0.5 <= m < 1
    return math.ldexp(1.0, e - 1 if m < 0.7071067811865476 else e)


class _Fields:
    """The random fields of one image, drawn on first use (so a pure function of the rng)."""

    def __init__(self, rng, res):
        self.rng = rng
        self.res = res
        self.cache = {}

    def uniform(self, key, channels=0):
        k = ('u', key)
        if k not in self.cache:
            shape = (self.res * self.res, channels) if channels else (self.res * self.res, )
            self.cache[k] = self.rng.random(shape, dtype=F32)
        return self.cache[k]

    def value_noise(self, scale):
        """Smooth value noise in [0, 1] with cells of ``scale`` base pixels, rounded to a power
        of two; at or below one pixel, a per-pixel uniform. ``float32[res * res]``."""
        scale = pow2(scale)
        if scale * self.res <= BASE:
            return self.uniform('fine')
        k = ('v', scale)
        if k not in self.cache:
            size, coords = _field_coords(self.res, scale)
            grid = self.rng.random((size, size), dtype=F32)
            self.cache[k] = upsample(grid, coords, coords).ravel()
        return self.cache[k]

    def fractal(self, scale, octaves):
        k = ('f', float(scale), int(octaves))
        if k not in self.cache:
            total = self.value_noise(scale)
            amp, norm = 1.0, 1.0
            for o in range(1, int(octaves)):
                amp *= 0.5
                norm += amp
                total = total + F32(amp) * self.value_noise(scale / 2 ** o)
            self.cache[k] = total * F32(1.0 / norm) if octaves > 1 else total
        return self.cache[k]

    def cells(self, cell, radius):
        """Spot cells of ``cell`` base pixels: (occupancy uniform, centre y, centre x)."""
        k = ('c', float(cell), float(radius))
        if k not in self.cache:
            n = int(BASE / cell) + 2
            u = self.rng.random((3, n * n), dtype=F32)
            span = F32(max(cell - 2 * radius, 0.0))
            self.cache[k] = (n, u[0], F32(radius) + u[1] * span, F32(radius) + u[2] * span)
        return self.cache[k]


def _pattern(pattern, idx, fields, g):
    """The weight ``t: float32[n]`` of ``color2`` at pixels ``idx``; None for flat."""
    kind = pattern['type']
    rng = fields.rng
    if kind == 'flat':
        return None
    if kind == 'gradient':
        return (g['yn'] if pattern.get('direction', 'vertical') == 'vertical' else g['xn'])[idx]
    if kind == 'stripes':
        period = float(pattern['period'])
        jit = float(pattern.get('angle_jitter', 0.0))
        angle = float(pattern.get('angle', 0.0)) + jit * (2.0 * rng.random() - 1.0)
        co, si = cos_sin(angle)
        off = rng.random() * period
        phase = (g['yb'][idx] * F32(co / period) - g['xb'][idx] * F32(si / period)
                 + F32(off / period))
        frac = phase - np.floor(phase)
        return (frac < F32(pattern.get('duty', 0.5))).astype(F32)
    if kind == 'checker':
        period = float(pattern['period'])
        oy, ox = rng.random(2) * (2.0 * period)
        iy = np.floor((g['yb'][idx] + F32(oy)) * F32(1.0 / period)).astype(np.int64)
        ix = np.floor((g['xb'][idx] + F32(ox)) * F32(1.0 / period)).astype(np.int64)
        return ((iy + ix) & 1).astype(F32)
    if kind == 'spots':
        density = float(pattern['density'])
        radius = float(pattern['radius'])
        if radius * fields.res / BASE < 1.0:  # sub-pixel spots: a per-pixel speckle
            return (fields.uniform('speckle')[idx] < F32(density)).astype(F32)
        cell = 2.5 * radius
        p_cell = min(1.0, density * cell * cell / (math.pi * radius * radius))
        n, occ, cy, cx = fields.cells(cell, radius)
        y, x = g['yb'][idx], g['xb'][idx]
        fy = np.floor(y * F32(1.0 / cell))
        fx = np.floor(x * F32(1.0 / cell))
        ci = fy.astype(np.int64) * n + fx.astype(np.int64)
        dy = y - (fy * F32(cell) + cy[ci])
        dx = x - (fx * F32(cell) + cx[ci])
        inside = (dy * dy + dx * dx < F32(radius * radius)) & (occ[ci] < F32(p_cell))
        return inside.astype(F32)
    if kind == 'noise':
        f = fields.fractal(pattern['scale'], pattern.get('octaves', 1))[idx]
        contrast = F32(pattern.get('contrast', 1.0))
        t = f * contrast
        t += F32(0.5) - F32(0.5) * contrast
        np.maximum(t, F32(0.0), out=t)
        return np.minimum(t, F32(1.0), out=t)
    raise ValueError(f'unknown pattern type {kind!r}; expected one of flat, gradient, stripes, '
                     'checker, spots, noise.')


def _assign(recipe, idx, fields, t_map, unit_map, units):
    """Render ``recipe`` at the flat pixel indices ``idx: int64[n]``: write the pattern weight
    into ``t_map`` and a new unit id into ``unit_map``, and append the unit's colour parameters
    ``(base + jitter - noise, color2 - base, 2 * noise)`` to ``units``. A mixture sends each pixel
    to its first component with probability p, else to the second (both source recipes)."""
    if 'mixture' in recipe:
        (a, b) = recipe['mixture']
        pick = fields.uniform('mixture')[idx] < F32(a['p'])
        _assign(SOURCE_RECIPES[a['recipe']], idx[pick], fields, t_map, unit_map, units)
        _assign(SOURCE_RECIPES[b['recipe']], idx[~pick], fields, t_map, unit_map, units)
        return
    j = recipe['jitter']
    jitter = [(2.0 * r - 1.0) * j for r in fields.rng.random(3).tolist()]
    t = _pattern(recipe['pattern'], idx, fields, grids(fields.res))
    if t is not None:
        t_map[idx] = t
    unit_map[idx] = len(units)
    base, color2, noise = recipe['base'], recipe['color2'], recipe['noise']
    units.append([base[0] + jitter[0] - noise, base[1] + jitter[1] - noise,
                  base[2] + jitter[2] - noise, color2[0] - base[0], color2[1] - base[1],
                  color2[2] - base[2], 2.0 * noise])


def render_recipe(recipe, rng, resolution=64, mask=None):
    """Render one region of a single recipe, as one instance (for tests and appearance metrics).

    Args:
        recipe: a recipe dict (source, synonym, mixture or novel).
        rng: ``numpy.random.Generator`` (consumed).
        resolution: image side in pixels.
        mask: ``bool[R, R]`` region to render; None = the whole image.

    Returns:
        ``uint8[R, R, 3]`` RGB; pixels outside ``mask`` are 0.
    """
    res2 = resolution * resolution
    idx = np.arange(res2) if mask is None else np.flatnonzero(np.asarray(mask).ravel())
    fields = _Fields(rng, resolution)
    t_map = np.zeros(res2, F32)
    unit_map = np.zeros(res2, np.intp)
    units = []
    _assign(recipe, idx, fields, t_map, unit_map, units)
    if not units:
        return np.zeros((resolution, resolution, 3), np.uint8)
    out = np.zeros((res2, 3), np.uint8)
    out[idx] = _to_uint8(_colours(t_map, unit_map, units, fields))[idx]
    return out.reshape(resolution, resolution, 3)


def _to_uint8(col):
    np.maximum(col, F32(0.0), out=col)
    np.minimum(col, F32(255.0), out=col)
    return np.rint(col, out=col).astype(np.uint8)


def _colours(t_map, unit_map, units, fields):
    """``float32[res * res, 3]``: ``base' + t * delta + 2 * noise * u`` per pixel, with the unit
    parameters gathered by ``unit_map`` and ``u`` a per-pixel uniform (luminance noise)."""
    u = np.asarray(units, F32)
    col = u[:, 0:3].take(unit_map, axis=0)
    delta = u[:, 3:6].take(unit_map, axis=0)
    delta *= t_map[:, None]
    col += delta
    noise = u[:, 6].take(unit_map)
    noise *= fields.uniform('pixel')
    col += noise[:, None]
    return col


def render_scene(rng, inst, inst_classes, domain):
    """Render an image from a layout.

    Args:
        rng: ``numpy.random.Generator`` (consumed).
        inst: ``int16[H, W]`` instance ids (H == W).
        inst_classes: ``int64[K]`` class id of each instance.
        domain: ``'source'`` or ``'target'``: which recipes the class ids refer to.

    Returns:
        ``uint8[H, W, 3]`` RGB.
    """
    res = inst.shape[0]
    names = domain_classes(domain)
    recipes = domain_recipes(domain)
    fields = _Fields(rng, res)
    flat = inst.ravel()  # int16: the stable argsort is a radix sort
    order = np.argsort(flat, kind='stable')
    ends = np.cumsum(np.bincount(flat, minlength=len(inst_classes)))
    t_map = np.zeros(res * res, F32)
    unit_map = np.zeros(res * res, np.intp)
    units = []
    start = 0
    for k, end in enumerate(ends.tolist()):
        if end > start:
            _assign(recipes[names[inst_classes[k]]], order[start:end], fields, t_map, unit_map,
                    units)
        start = end
    return _to_uint8(_colours(t_map, unit_map, units, fields)).reshape(res, res, 3)
