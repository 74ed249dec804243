"""catgen.utils.io: atomic writes leave the old file or the complete new one, never a part."""
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from catgen.utils.io import (DiskFullError, atomic_write, is_temporary, remove_stale_temporaries,
                             temporary_path, write_bytes_atomic, write_text_atomic)


def test_temporary_path_is_hidden_beside_the_target_and_keeps_the_suffix(tmp_path):
    tmp = temporary_path(tmp_path / 'grid.png', pid=123)
    assert tmp == tmp_path / '.grid.tmp-123.png'
    assert is_temporary(tmp) and is_temporary(temporary_path('x/last_checkpoint'))
    assert not is_temporary(tmp_path / 'grid.png') and not is_temporary('.hidden')
    assert temporary_path('a.b.npz').name == f'.a.b.tmp-{os.getpid()}.npz'


def test_atomic_write_replaces_on_success(tmp_path):
    path = tmp_path / 'sub' / 'a.txt'  # the folder is created
    with atomic_write(path) as tmp:
        assert tmp.parent == path.parent and not path.exists()
        tmp.write_text('new')
    assert path.read_text() == 'new'
    assert os.listdir(path.parent) == ['a.txt']


def test_atomic_write_failure_keeps_the_old_file_and_removes_the_part(tmp_path):
    path = tmp_path / 'metrics.json'
    path.write_text('{"old": 1}')
    with pytest.raises(RuntimeError, match='midway'):
        with atomic_write(path) as tmp:
            tmp.write_text('{"new": 2, "trunc')
            raise RuntimeError('killed midway')
    assert path.read_text() == '{"old": 1}'
    assert os.listdir(tmp_path) == ['metrics.json']


def test_atomic_write_fsync_and_helpers(tmp_path):
    write_text_atomic(tmp_path / 'ids.txt', '1\n2\n', fsync=True)
    write_bytes_atomic(tmp_path / 'blob.bin', b'\x00\x01', fsync=True)
    with atomic_write(tmp_path / 'arrays.npz') as tmp:
        np.savez(tmp, values=np.arange(3))  # numpy keeps the .npz suffix of the temporary name
    assert (tmp_path / 'ids.txt').read_text() == '1\n2\n'
    assert (tmp_path / 'blob.bin').read_bytes() == b'\x00\x01'
    assert np.load(tmp_path / 'arrays.npz')['values'].tolist() == [0, 1, 2]
    assert sorted(os.listdir(tmp_path)) == ['arrays.npz', 'blob.bin', 'ids.txt']


def test_atomic_write_says_when_nothing_was_written(tmp_path):
    path = tmp_path / 'arrays'
    with pytest.raises(FileNotFoundError, match='nothing was written to the temporary file'):
        with atomic_write(path) as tmp:
            np.savez(tmp, values=np.arange(3))  # writes <tmp>.npz, not <tmp>
    assert not path.exists()


def test_remove_stale_temporaries_keeps_files_of_running_processes(tmp_path):
    dead_pid = int(subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                                  capture_output=True, text=True, check=True).stdout)
    stale = temporary_path(tmp_path / 'iter_4.pth', pid=dead_pid)
    stale_png = temporary_path(tmp_path / 'x.png', pid=dead_pid)
    mine = temporary_path(tmp_path / 'iter_6.pth')
    final = tmp_path / 'iter_2.pth'
    for path in (stale, stale_png, mine, final):
        path.write_bytes(b'data')
    assert remove_stale_temporaries(tmp_path, suffixes=('.pth', )) == [stale]
    assert stale_png.exists() and mine.exists() and final.exists()
    assert remove_stale_temporaries(tmp_path) == [stale_png]
    assert remove_stale_temporaries(tmp_path / 'missing') == []


@pytest.mark.parametrize('error', [
    OSError(errno.ENOSPC, 'No space left on device'),
    RuntimeError('[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed '
                 'writing file data/3: file write failed')])
def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, error):
    target = tmp_path / 'run' / 'iter_100.pth'
    target.parent.mkdir()
    target.write_bytes(b'old')
    with pytest.raises(DiskFullError, match=r'No space left to write .*iter_100\.pth') as info:
        with atomic_write(target) as tmp:
            Path(tmp).write_bytes(b'part')
            raise error
    assert info.value.errno == errno.ENOSPC and 'MiB free there now' in str(info.value)
    assert target.read_bytes() == b'old'
    assert [p.name for p in target.parent.iterdir()] == ['iter_100.pth']
    # other errors pass through unchanged
    with pytest.raises(RuntimeError, match='^CUDA error$'):
        with atomic_write(target):
            raise RuntimeError('CUDA error')
