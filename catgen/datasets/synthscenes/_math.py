"""Bit-reproducible numeric helpers (numpy only).

Everything that decides a pixel uses only IEEE-exact operations (+, -, *, /, sqrt, floor,
comparisons) on float32 arrays and uniform draws from ``numpy.random.Generator`` (PCG64), never
libm transcendental functions or BLAS, whose last bits may differ between machines. Angles are
turned into directions by :func:`cos_sin`, a fixed polynomial evaluated in Python floats.
"""
import math

import numpy as np

F32 = np.float32


def cos_sin(degrees):
    """``(cos, sin)`` of an angle in degrees, the same bits on every machine (|error| < 1e-15)."""
    d = math.fmod(float(degrees), 360.0)
    if d > 180.0:
        d -= 360.0
    elif d < -180.0:
        d += 360.0
    sign = 1.0
    if d > 90.0:  # cos(180 - a) = -cos(a), sin(180 - a) = sin(a)
        d, sign = 180.0 - d, -1.0
    elif d < -90.0:
        d, sign = -180.0 - d, -1.0
    x = d * (math.pi / 180.0)
    x2 = x * x
    # Taylor series, |x| <= pi/2: 12 terms are far below double precision.
    c = s = 0.0
    term_c, term_s = 1.0, x
    for k in range(12):
        c += term_c
        s += term_s
        term_c *= -x2 / ((2 * k + 1) * (2 * k + 2))
        term_s *= -x2 / ((2 * k + 2) * (2 * k + 3))
    return sign * c, s


def smoothstep(f):
    """``f * f * (3 - 2 f)`` for f in [0, 1] (float32 in, float32 out)."""
    return f * f * (F32(3.0) - F32(2.0) * f)


def interp_coords(positions, size):
    """Cell index and smoothstep weight for value-noise interpolation.

    positions: float32[L] in grid units, within ``[0, size - 1]``.
    Returns ``(i0: intp[L], i0 + 1: intp[L], w: float32[L], 1 - w: float32[L])`` with
    ``i0 + 1 <= size - 1``.
    """
    i0 = np.floor(positions)
    i0 = np.minimum(i0, F32(size - 2))
    f = positions - i0
    w = smoothstep(f).astype(F32)
    i0 = i0.astype(np.intp)
    return i0, i0 + 1, w, (F32(1.0) - w)


def upsample(grid, ry, rx):
    """Separable smooth interpolation of ``grid: float32[gh, gw]`` at rows ``ry`` and columns
    ``rx`` (each a tuple from :func:`interp_coords`).
    Returns ``float32[len(ry[0]), len(rx[0])]``."""
    iy, iy1, wy, vy = ry
    ix, ix1, wx, vx = rx
    cols = grid.take(ix, axis=1)
    cols *= vx
    nxt = grid.take(ix1, axis=1)
    nxt *= wx
    cols += nxt
    out = cols.take(iy, axis=0)
    out *= vy[:, None]
    nxt = cols.take(iy1, axis=0)
    nxt *= wy[:, None]
    out += nxt
    return out
