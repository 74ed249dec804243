"""Crash-safe file writing: write to a temporary name, rename when complete.

A process killed at any moment (``SIGKILL``, out of memory, a pre-empted job) never leaves a
truncated file under a final name: readers see the old file, or none, or the complete new one.
Temporary files are named ``.<stem>.tmp-<pid><suffix>`` beside the target; a kill can leave one
behind, which :func:`remove_stale_temporaries` deletes once its process is gone.
"""
import contextlib
import errno
import os
import re
import shutil
from pathlib import Path

__all__ = ['DiskFullError', 'atomic_write', 'write_text_atomic', 'write_bytes_atomic', 'temporary_path',
           'is_temporary', 'remove_stale_temporaries']

# .<stem>.tmp-<pid><suffix>: what temporary_path() makes
_TEMPORARY = re.compile(r'^\.(?P<stem>.*)\.tmp-(?P<pid>\d+)(?P<suffix>(\.[^.]*)?)$')


def temporary_path(path, pid=None):
    """The temporary name :func:`atomic_write` writes ``path`` under before renaming it.

    ``dir/name.ext`` -> ``dir/.name.tmp-<pid>.ext``: hidden, in the same folder (so the rename
    stays on one file system and is atomic), with the same suffix (so that libraries that pick a
    format from the suffix, PIL and numpy, still work).

    Args:
        path: str | Path of the final file.
        pid: process id in the name; the current process's by default.
    """
    path = Path(path)
    pid = os.getpid() if pid is None else int(pid)
    return path.with_name(f'.{path.stem}.tmp-{pid}{path.suffix}')


def is_temporary(path):
    """True if ``path``'s name is one :func:`temporary_path` makes."""
    return _TEMPORARY.match(Path(path).name) is not None


def _fsync_dir(folder):
    """Flush a folder's entries (the rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DiskFullError(OSError):
    """Writing a file failed because its file system is full (or over quota)."""


# torch.save reports a full disk as a RuntimeError ("PytorchStreamWriter failed writing file
# data/0: file write failed"), not as an OSError
_WRITE_FAILED = re.compile(r'file write failed|No space left|Disk quota exceeded',
                           flags=re.IGNORECASE)


def _is_disk_full(err):
    if isinstance(err, OSError):
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(err, RuntimeError) and _WRITE_FAILED.search(str(err)) is not None


def _disk_full_error(path, err):
    try:
        free = f'{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there now'
    except OSError:
        free = 'free space unknown'
    return DiskFullError(
        errno.ENOSPC,
        f'No space left to write {path} ({free}; {type(err).__name__}: '
        f'{" ".join(str(err).split())[:160]}). The previous {path.name}, if any, is unchanged and '
        f'no partial file was left. What to do: free space on that disk (old work_dirs/ '
        f'checkpoints are the usual culprits: max_keep_ckpts keeps fewer) or write elsewhere '
        f'(--work-dir / --out), then rerun (training: --resume).', str(path))


@contextlib.contextmanager
def atomic_write(path, fsync=False):
    """Yield a temporary path beside ``path``; ``os.replace`` it onto ``path`` on success.

    A crash (or kill) inside the block leaves ``path`` untouched (the old file, or none) and
    removes the temporary file where it can (an exception does; ``SIGKILL`` cannot, see
    :func:`remove_stale_temporaries`). The temporary name keeps the suffix so that libraries
    that pick a format from it (PIL, numpy) still work.

    Args:
        path: str | Path of the final file; its folder is created if missing.
        fsync: also flush the file's bytes and then the rename to disk (``os.fsync``), so that
            a power loss or OS crash, not only a killed process, finds the old or the new file
            complete. Slower; meant for checkpoints, not for thousands of small images.

    Raises:
        FileNotFoundError: the block wrote nothing at the temporary path (e.g. a library
            appended its own suffix); ``path`` is left as it was.
        DiskFullError: the disk (or quota) is full; the message names ``path`` and the free
            space, and ``path`` is left as it was.

    Example::

        with atomic_write('out/grid.png') as tmp:
            Image.fromarray(arr).save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        try:
            yield tmp
        except (OSError, RuntimeError) as err:
            if _is_disk_full(err):
                raise _disk_full_error(path, err) from err
            raise
        if not tmp.is_file():
            raise FileNotFoundError(
                f'atomic_write({str(path)!r}): nothing was written to the temporary file {tmp}, '
                f'so {path} was left as it was. Write to exactly the path the context manager '
                f'yields (numpy.savez, for one, appends ".npz" to a name without that suffix).')
        try:
            if fsync:
                with open(tmp, 'rb') as f:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as err:
            if _is_disk_full(err):
                raise _disk_full_error(path, err) from err
            raise
        if fsync:
            _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path, text, fsync=False):
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, fsync=fsync) as tmp:
        Path(tmp).write_text(text)


def write_bytes_atomic(path, data, fsync=False):
    """Write ``data`` (bytes) to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, fsync=fsync) as tmp:
        Path(tmp).write_bytes(data)


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def remove_stale_temporaries(folder, suffixes=None):
    """Delete the temporary files that killed writers left in ``folder`` (not recursive).

    A file is stale when its name is one :func:`temporary_path` makes and the process id in
    it is not running on this machine; files of running processes (this one included) stay.
    Do not point this at a folder that processes on *other* machines write into (their ids
    mean nothing here).

    Args:
        folder: str | Path; a missing folder is fine (nothing to do).
        suffixes: only names ending with one of these (e.g. ``('.pth',)``); all by default.

    Returns:
        list[Path]: the files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file():
            continue
        if suffixes is not None and not entry.name.endswith(tuple(suffixes)):
            continue
        if _pid_alive(int(match.group('pid'))):
            continue
        try:
            entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed
