"""--threads: PyTorch threads set explicitly, from OMP_NUM_THREADS, or the cores available."""
import pytest
import torch

from catgen.utils.setup_env import available_cores, set_threads


def test_set_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_threads(2) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv('OMP_NUM_THREADS', '1')
        assert set_threads() == 1
        monkeypatch.delenv('OMP_NUM_THREADS')
        assert set_threads() == available_cores() >= 1
        with pytest.raises(ValueError, match='--threads must be >= 1'):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
