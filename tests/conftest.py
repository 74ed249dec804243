"""Shared test set-up: one torch thread per test process (the suite runs with -n 2 on 2 cores;
more threads make tiny convolutions many times slower), and catgen's environment."""
import os

os.environ.setdefault('OMP_NUM_THREADS', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope='session')
def catgen_env():
    from catgen.utils.setup_env import setup_env
    setup_env()
    yield
