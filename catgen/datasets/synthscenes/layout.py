"""SynthScenes layouts: where each class is, as an instance map.

A scene is a horizon that splits a top band (sky-like class) from a bottom band (ground-like
class; sometimes a second ground band further down), then a random number of objects
(ellipses, rectangles, triangles, blobs = thresholded smooth noise) painted on top in random
order, so that later objects occlude earlier ones. Every length is a fraction of the image side,
so a layout scales with the resolution. The two domains draw from different distributions: the
target has a strongly tilted horizon, fewer and larger objects, and mostly blobs.
"""
import math
from functools import lru_cache

import numpy as np

from ._math import F32, cos_sin, interp_coords, upsample
from .recipes import check_domain, domain_classes

# Object classes: name -> (placement, shapes, size factor, aspect range (width / height)).
# placement: 'sky' (above the horizon), 'horizon' (standing on it), 'ground' (below it).
LAYOUTS = {
    'source': {
        'top': ('sky', ),
        'ground': ('grass', 'water', 'sand', 'road', 'snow', 'dirt', 'gravel'),
        'horizon': (0.3, 0.6),      # height of the horizon at the image centre
        'slope': 0.05,              # |dy/dx| of the horizon at most
        'second_band_p': 0.35,      # probability of a second ground band
        'num_objects': (2, 7),      # inclusive
        'size': (0.06, 0.2),        # object half-size, fraction of the image side
        'objects': {
            'cloud': ('sky', ('ellipse', 'blob'), 1.2, (1.5, 3.0)),
            'sun': ('sky', ('ellipse', ), 0.55, (1.0, 1.0)),
            'mountain': ('horizon', ('triangle', ), 1.6, (1.0, 1.8)),
            'building': ('horizon', ('rectangle', ), 1.1, (0.3, 0.8)),
            'tree': ('horizon', ('ellipse', 'blob'), 0.9, (0.6, 1.0)),
            'rock': ('ground', ('ellipse', 'blob'), 0.9, (1.0, 1.8)),
            'brick': ('ground', ('rectangle', ), 0.9, (0.8, 2.0)),
            'car': ('ground', ('rectangle', 'ellipse'), 0.8, (1.8, 2.8)),
            'fence': ('ground', ('rectangle', ), 1.0, (3.0, 6.0)),
            'flower': ('ground', ('ellipse', 'blob'), 0.8, (0.8, 1.3)),
            'wood': ('ground', ('rectangle', 'triangle'), 0.9, (1.5, 3.0)),
            'metal': ('ground', ('rectangle', 'triangle'), 0.9, (0.7, 1.5)),
        },
    },
    'target': {
        'top': ('overcast', ),
        'ground': ('lawn', 'ocean', 'pavement', 'meadow', 'shore', 'lava', 'ice'),
        'horizon': (0.25, 0.55),
        'slope': 0.45,
        'second_band_p': 0.5,
        'num_objects': (1, 4),
        'size': (0.12, 0.3),
        'objects': {
            'forest': ('horizon', ('blob', 'blob', 'ellipse'), 1.2, (1.2, 2.5)),
            'wall': ('ground', ('rectangle', ), 1.0, (1.5, 3.0)),
            'boulder': ('ground', ('blob', 'ellipse'), 0.9, (1.0, 1.6)),
            'lava': ('ground', ('blob', ), 1.0, (1.2, 2.2)),
            'ice': ('ground', ('blob', 'triangle'), 0.9, (0.8, 1.5)),
            'meadow': ('ground', ('blob', ), 1.1, (1.2, 2.2)),
            'ocean': ('ground', ('blob', ), 1.2, (1.5, 2.5)),
        },
    },
}


@lru_cache(maxsize=None)
def _object_table(domain):
    classes = domain_classes(domain)
    cfg = LAYOUTS[domain]
    names = tuple(cfg['objects'])
    return (tuple(classes.index(n) for n in names), tuple(cfg['objects'][n] for n in names),
            tuple(classes.index(n) for n in cfg['top']),
            tuple(classes.index(n) for n in cfg['ground']))


@lru_cache(maxsize=None)
def pixel_centres(res):
    """Pixel-centre coordinates in pixels, ``float32[res]`` (read-only)."""
    c = (np.arange(res, dtype=F32) + F32(0.5))
    c.flags.writeable = False
    return c


def _u(rng, lo, hi):
    return lo + (hi - lo) * rng.random()


def _bbox(cy, cx, ry, rx, res):
    y0, y1 = max(0, int(math.floor(cy - ry))), min(res, int(math.ceil(cy + ry)) + 1)
    x0, x1 = max(0, int(math.floor(cx - rx))), min(res, int(math.ceil(cx + rx)) + 1)
    return y0, y1, x0, x1


def _rotated(cy, cx, angle, box, res):
    """Rotated local coordinates (u along the width, v along the height) over a bbox."""
    y0, y1, x0, x1 = box
    c = pixel_centres(res)
    dy = (c[y0:y1] - F32(cy))[:, None]
    dx = (c[x0:x1] - F32(cx))[None, :]
    co, si = cos_sin(angle)
    co, si = F32(co), F32(si)
    return dx * co + dy * si, dy * co - dx * si


def _ellipse(rng, cy, cx, a, b, angle, res):
    r = max(a, b)
    box = _bbox(cy, cx, r, r, res)
    if box[0] >= box[1] or box[2] >= box[3]:
        return box, None
    u, v = _rotated(cy, cx, angle, box, res)
    ua, vb = u / F32(a), v / F32(b)
    return box, ua * ua + vb * vb <= F32(1.0)


def _rectangle(rng, cy, cx, a, b, angle, res):
    if angle == 0.0:  # axis-aligned: an outer product of two 1-D tests
        box = _bbox(cy, cx, b, a, res)
        if box[0] >= box[1] or box[2] >= box[3]:
            return box, None
        c = pixel_centres(res)
        inside_y = np.abs(c[box[0]:box[1]] - F32(cy)) <= F32(b)
        inside_x = np.abs(c[box[2]:box[3]] - F32(cx)) <= F32(a)
        return box, inside_y[:, None] & inside_x[None, :]
    r = math.sqrt(a * a + b * b)
    box = _bbox(cy, cx, r, r, res)
    if box[0] >= box[1] or box[2] >= box[3]:
        return box, None
    u, v = _rotated(cy, cx, angle, box, res)
    return box, (np.abs(u) <= F32(a)) & (np.abs(v) <= F32(b))


def _triangle_mask(pts, res):
    ys = [p[0] for p in pts]
    xs = [p[1] for p in pts]
    box = (max(0, int(math.floor(min(ys)))), min(res, int(math.ceil(max(ys))) + 1),
           max(0, int(math.floor(min(xs)))), min(res, int(math.ceil(max(xs))) + 1))
    if box[0] >= box[1] or box[2] >= box[3]:
        return box, None
    c = pixel_centres(res)
    y = c[box[0]:box[1]][:, None]
    x = c[box[2]:box[3]][None, :]
    edges = []
    for i in range(3):
        (ya, xa), (yb, xb) = pts[i], pts[(i + 1) % 3]
        edges.append((x - F32(xa)) * F32(yb - ya) - (y - F32(ya)) * F32(xb - xa))
    pos = (edges[0] >= 0) & (edges[1] >= 0) & (edges[2] >= 0)
    neg = (edges[0] <= 0) & (edges[1] <= 0) & (edges[2] <= 0)
    return box, pos | neg


def _triangle(rng, cy, cx, a, b, angle, res):
    pts = []
    for k in range(3):
        co, si = cos_sin(angle + 120.0 * k + _u(rng, -25.0, 25.0))
        rad = _u(rng, 0.75, 1.2)
        pts.append((cy + si * b * rad, cx + co * a * rad))
    return _triangle_mask(pts, res)


def _blob(rng, cy, cx, a, b, angle, res, grid=5):
    """Thresholded smooth noise inside an ellipse falloff: a compact, irregular region."""
    r = 1.25 * max(a, b)
    box = _bbox(cy, cx, r, r, res)
    g = rng.random((grid, grid), dtype=F32)
    if box[0] >= box[1] or box[2] >= box[3]:
        return box, None
    u, v = _rotated(cy, cx, angle, box, res)
    ua, vb = u / F32(a), v / F32(b)
    d2 = ua * ua + vb * vb
    c = pixel_centres(res)
    scale = F32((grid - 1) / (2.0 * r))
    py = np.minimum(np.maximum((c[box[0]:box[1]] - F32(cy - r)) * scale, F32(0)), F32(grid - 1))
    px = np.minimum(np.maximum((c[box[2]:box[3]] - F32(cx - r)) * scale, F32(0)), F32(grid - 1))
    n = upsample(g, interp_coords(py, grid), interp_coords(px, grid))
    return box, (F32(1.0) - d2) + F32(1.1) * (n - F32(0.5)) > F32(0.3)


_SHAPES = {'ellipse': _ellipse, 'rectangle': _rectangle, 'triangle': _triangle, 'blob': _blob}


def _horizon_y(h, slope, x, res):
    return h + slope * (x - 0.5 * res)


def make_layout(rng, domain, res):
    """Draw one layout.

    Args:
        rng: ``numpy.random.Generator`` (consumed).
        domain: ``'source'`` or ``'target'``.
        res: the image side in pixels.

    Returns:
        ``(inst: int16[res, res], inst_classes: int64[K])``: the instance id of each pixel and
        the class id (index into the domain's class list) of each instance. Some instances may
        be fully occluded.
    """
    check_domain(domain)
    cfg = LAYOUTS[domain]
    obj_ids, obj_specs, top_ids, ground_ids = _object_table(domain)
    c = pixel_centres(res)

    # Bands: top (instance 0), ground (1), optional second ground band (2).
    h = _u(rng, *cfg['horizon']) * res
    slope = _u(rng, -cfg['slope'], cfg['slope'])
    line = F32(h) + F32(slope) * (c - F32(0.5 * res))
    classes = [top_ids[int(rng.integers(len(top_ids)))]]
    g1 = int(rng.integers(len(ground_ids)))
    classes.append(ground_ids[g1])
    inst = (c[:, None] >= line[None, :]).astype(np.int16)
    if rng.random() < cfg['second_band_p']:
        g2 = int(rng.integers(len(ground_ids) - 1))
        g2 += g2 >= g1
        h2 = h + _u(rng, 0.3, 0.8) * (res - h)
        slope2 = slope + _u(rng, -0.15, 0.15)
        line2 = F32(h2) + F32(slope2) * (c - F32(0.5 * res))
        inst[c[:, None] > line2[None, :]] = 2
        classes.append(ground_ids[g2])

    # Objects, in random order; later ones occlude earlier ones.
    lo, hi = cfg['num_objects']
    for _ in range(int(rng.integers(lo, hi + 1))):
        j = int(rng.integers(len(obj_ids)))
        placement, shapes, factor, (alo, ahi) = obj_specs[j]
        shape = shapes[int(rng.integers(len(shapes)))]
        s = _u(rng, *cfg['size']) * factor * res
        aspect = math.sqrt(_u(rng, alo, ahi))
        a, b = s * aspect, s / aspect                 # half width, half height
        cx = _u(rng, 0.0, 1.0) * res
        hz = _horizon_y(h, slope, cx, res)
        angle = 0.0
        if placement == 'sky':
            cy = _u(rng, 0.05 * res, max(0.05 * res, hz - 0.5 * b))
        elif placement == 'horizon':
            cy = hz - _u(rng, 0.3, 0.9) * b
        else:
            cy = _u(rng, min(hz + 0.3 * b, res), res)
            angle = _u(rng, -20.0, 20.0)
        if domain == 'target' and placement != 'horizon':
            angle = _u(rng, -45.0, 45.0)
        if shape == 'triangle' and placement == 'horizon':
            # A mountain: the apex above the horizon, the base a little below it.
            base_y = hz + 0.08 * res
            apex = (hz - _u(rng, 1.2, 2.2) * b, cx + _u(rng, -0.4, 0.4) * a)
            left = (base_y + slope * (-a), cx - _u(rng, 1.0, 1.6) * a)
            right = (base_y + slope * a, cx + _u(rng, 1.0, 1.6) * a)
            box, mask = _triangle_mask((apex, left, right), res)
        elif shape == 'rectangle' and placement == 'horizon':
            # A building: standing on the ground a little below the horizon.
            bottom = hz + _u(rng, 0.0, 0.1) * res
            box, mask = _rectangle(rng, bottom - b, cx, a, b, 0.0, res)
        else:
            box, mask = _SHAPES[shape](rng, cy, cx, a, b, angle, res)
        if mask is None:
            continue
        sub = inst[box[0]:box[1], box[2]:box[3]]
        sub[mask] = len(classes)
        classes.append(obj_ids[j])
    return inst, np.asarray(classes, dtype=np.int64)
