"""One run per work dir: a second run refuses, a stale lock is taken over with a warning."""
import json
import os
import socket
import subprocess
import sys

import pytest

from catgen.utils.work_dir_lock import LOCK_NAME, WorkDirLock, WorkDirLockedError


def test_second_run_refuses_naming_the_owner(tmp_path):
    with WorkDirLock(tmp_path, what='first run'):
        owner = json.loads((tmp_path / LOCK_NAME).read_text())
        assert owner['pid'] == os.getpid() and owner['host'] == socket.gethostname()
        with pytest.raises(WorkDirLockedError) as err:
            WorkDirLock(tmp_path).acquire()
        msg = str(err.value)
        assert str(os.getpid()) in msg and 'first run' in msg and '--work-dir' in msg
    assert not (tmp_path / LOCK_NAME).exists()  # released
    with WorkDirLock(tmp_path):  # free again
        pass


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(pid=int(dead), host=socket.gethostname(),
                                                      started=0, what='killed run')))
    with pytest.warns(UserWarning, match='stale lock'):
        with WorkDirLock(tmp_path):
            assert json.loads((tmp_path / LOCK_NAME).read_text())['pid'] == os.getpid()


def test_lock_of_another_host_is_respected(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps(dict(pid=1, host='elsewhere', started=0)))
    with pytest.raises(WorkDirLockedError, match='elsewhere'):
        WorkDirLock(tmp_path).acquire()


def test_only_rank_zero_locks(tmp_path, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    with WorkDirLock(tmp_path):
        assert not (tmp_path / LOCK_NAME).exists()
