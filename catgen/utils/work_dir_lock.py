"""One run per work dir: a lock file with the owner's pid and host.

Two trainings writing checkpoints, ``last_checkpoint`` and logs into the same work dir would
overwrite each other's files and resume from each other's checkpoints, silently. The second one
refuses to start instead. A lock left by a process that died (same host, pid not running) is
taken over with a warning.
"""
import json
import os
import socket
import time
import warnings
from pathlib import Path

LOCK_NAME = '.catgen.lock'


class WorkDirLockedError(RuntimeError):
    """Another live process holds the work dir."""


def _pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError):
        return True  # someone else's process, or cannot tell: assume alive
    return True


class WorkDirLock:
    """Context manager holding ``<work_dir>/.catgen.lock`` for the duration of a run.

    Args:
        work_dir: the run's work dir (created if missing).
        what: what the run is, for the lock file and messages (e.g. the command line).

    Only the main process of a distributed run takes the lock (``RANK`` 0 or unset).

    Raises:
        WorkDirLockedError: a live process (this host) or a process on another host holds it.
    """

    def __init__(self, work_dir, what=''):
        self.path = Path(work_dir) / LOCK_NAME
        self.what = what
        self.held = False

    def _owner(self):
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def acquire(self):
        if os.environ.get('RANK', '0') != '0':
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = dict(pid=os.getpid(), host=socket.gethostname(), started=time.time(),
                  what=self.what)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:  # being written right now, or garbage: look again once
                    time.sleep(0.1)
                    owner = self._owner() or {}
                same_host = owner.get('host') == me['host']
                if same_host and not _pid_alive(owner.get('pid', -1)):
                    warnings.warn(f'{self.path}: taking over a stale lock of process '
                                  f'{owner.get("pid")} on {owner.get("host")}, which is not '
                                  'running any more (a killed run).', UserWarning, stacklevel=3)
                    self.path.unlink(missing_ok=True)
                    continue
                raise WorkDirLockedError(
                    f'{self.path.parent} is in use by process {owner.get("pid")} on '
                    f'{owner.get("host")} ({owner.get("what") or "a catgen run"}, started '
                    f'{time.ctime(owner.get("started", 0))}). Two runs in one work dir would '
                    f'overwrite each other\'s checkpoints and logs. Wait for it to finish, or '
                    f'give this run another --work-dir; if that process is really gone (e.g. on '
                    f'another machine), delete {self.path}.')
            with os.fdopen(fd, 'w') as f:
                json.dump(me, f)
            self.held = True
            return self
        raise WorkDirLockedError(f'could not take {self.path}')

    def release(self):
        if self.held:
            owner = self._owner() or {}
            if owner.get('pid') == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
