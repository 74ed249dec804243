"""Keep freed CPU memory in the process: glibc's mmap and trim thresholds for training loops.

A CPU training step allocates and frees the same few hundred activation buffers every iteration.
With glibc's defaults, buffers above the (dynamic) mmap threshold are ``mmap``-ed and ``munmap``-ed
each time, and free memory at the top of the heap is trimmed back to the OS, so every iteration
faults the same pages in again: on 2 cores this cost the OASIS step about 1 s of system time and
3-4x the minor page faults of the official code (issue 18, ``docs/benchmarks.md``). Raising both
thresholds and allocating every size from the heap (no ``mmap``) makes freed buffers stay in the
process for the next iteration; the maths is untouched.

:func:`tune_allocator` is called by catgen's entry points (``tools/train.py``, ``tools/test.py``,
``tools/benchmark.py``, ``tools/demo.py``, ...), never on import of the library. It does nothing

* when the C library is not glibc (macOS, musl) or ``mallopt`` is missing;
* when the user set ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` /
  ``MALLOC_MMAP_MAX_`` (or ``GLIBC_TUNABLES``) themselves: theirs win;
* when ``CATGEN_MALLOC_TUNING=0``.

The price: the process's resident memory stays near its peak instead of shrinking between
iterations (peak memory itself does not grow;
``tools/benchmarks/oasis_vs_official.py`` records both).
"""
import ctypes
import ctypes.util
import os

__all__ = ['tune_allocator', 'MMAP_THRESHOLD', 'TRIM_THRESHOLD']

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4

MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes a C int: 2 GiB, i.e. never trim in practice

_USER_VARS = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_MAX_',
              'GLIBC_TUNABLES')
_applied = None


def tune_allocator(environ=None):
    """Raise glibc's mmap and trim thresholds and stop its use of mmap in this process; idempotent.

    Args:
        environ: the environment to read the opt-outs from (default ``os.environ``).

    Returns:
        ``True`` if the thresholds were set, ``False`` if skipped (not glibc, user settings,
        ``CATGEN_MALLOC_TUNING=0``).
    """
    global _applied
    if _applied is not None:
        return _applied
    env = os.environ if environ is None else environ
    if env.get('CATGEN_MALLOC_TUNING', '1') == '0' or any(v in env for v in _USER_VARS):
        _applied = False
        return _applied
    mallopt = _glibc_mallopt()
    if mallopt is None:
        _applied = False
        return _applied
    # mallopt returns 1 on success, 0 on error; setting M_MMAP_THRESHOLD also switches off the
    # dynamic threshold that would otherwise creep up and down with the freed sizes
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    # no mmap at all: glibc caps the threshold at 32 MiB, and activations of 32 MiB and more
    # (a [8, 256, 64, 64] float map; [4, 256, 128, 128]) would still be mapped and faulted in
    # afresh on every use; from the heap they are reused like the smaller ones
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and ok
    _applied = ok
    return _applied


def _glibc_mallopt():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.gnu_get_libc_version  # glibc only
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn
