"""Crash-safe file writing: write to a temporary name, rename when complete."""
import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path beside ``path``; ``os.replace`` it onto ``path`` on success.

    A crash (or kill) inside the block leaves ``path`` untouched (the old file, or none) and
    removes the temporary file where it can. The temporary name keeps the suffix so that
    libraries that pick a format from it (PIL, numpy) still work.

    Example::

        with atomic_write('out/grid.png') as tmp:
            Image.fromarray(arr).save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.tmp-{os.getpid()}{path.suffix}')
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as tmp:
        Path(tmp).write_text(text)
