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


@pytest.fixture(autouse=True)
def forget_visualizers():
    """Drop the Visualizers a test's runs create: the configs name their Visualizer
    'visualizer', and MMEngine hands an existing instance of that name (still writing into the
    first run's work dir) to every later Runner of the process."""
    from mmengine.visualization import Visualizer

    def family(cls):
        return [cls] + [c for sub in cls.__subclasses__() for c in family(sub)]

    before = {cls: set(cls._instance_dict) for cls in family(Visualizer)}
    yield
    for cls in family(Visualizer):
        for name in set(cls._instance_dict) - before.get(cls, set()):
            del cls._instance_dict[name]


@pytest.fixture(scope='session')
def tiny_synthscenes(tmp_path_factory):
    """A tiny SynthScenes set on disk (16 source train, 8 val, 30 target train, 8 val)."""
    from catgen.datasets.synthscenes import write_synthscenes
    root = tmp_path_factory.mktemp('synthscenes')
    write_synthscenes(root, resolution=64, seed=0, num_train_source=16, num_val_source=8,
                      num_train_target=30, num_val_target=8, progress=False)
    return root


@pytest.fixture(scope='module')
def alex_file(tmp_path_factory):
    """torchvision-layout AlexNet checkpoint with seeded random weights (for LPIPS)."""
    import math

    import torchvision
    with torch.device('meta'):
        model = torchvision.models.alexnet()
    features = model.features.to_empty(device='cpu')
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in features.parameters():
            p.normal_(0, math.sqrt(2 / p[0].numel()) if p.ndim > 1 else 0.1, generator=g)
    path = tmp_path_factory.mktemp('lpips') / 'alexnet-owt-7be5be79.pth'
    torch.save({f'features.{k}': v for k, v in features.state_dict().items()}, path)
    return path


def tiny_oasis_options(data_root, work_dir, max_iters=2, checkpoint_interval=2):
    """--cfg-options that shrink configs/oasis/oasis_synthscenes-source.py to a seconds-long run."""
    return {
        'work_dir': str(work_dir),
        'model.generator.base_channels': 4, 'model.generator.spade_hidden': 8,
        'model.generator.z_dim': 4, 'model.discriminator.base_channels': 2,
        'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.batch_size': 4, 'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.batch_size': 4, 'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': str(data_root),
        'val_dataloader.dataset.data_root': str(data_root),
        'test_dataloader.dataset.data_root': str(data_root),
        'train_cfg.max_iters': max_iters, 'train_cfg.val_interval': max_iters,
        'default_hooks.checkpoint.interval': checkpoint_interval,
        'default_hooks.logger.interval': 1,
        'default_hooks.ema_norm_stats.num_batches': 2,
        'custom_hooks': [dict(type='SampleGridHook', interval=checkpoint_interval, num_samples=3),
                         dict(type='SaveSubsetIdsHook')],
        'randomness': dict(seed=0, deterministic=True),
        'env_cfg.mp_cfg.mp_start_method': 'fork',
    }


@pytest.fixture
def tiny_oasis_cfg(tiny_synthscenes, tmp_path):
    """A Config of a tiny OASIS on tiny SynthScenes, with its own work dir."""
    from mmengine.config import Config

    from catgen.utils.config import fill_num_classes
    cfg = Config.fromfile('configs/oasis/oasis_synthscenes-source.py')
    cfg.merge_from_dict(tiny_oasis_options(tiny_synthscenes, tmp_path / 'work'))
    return fill_num_classes(cfg)  # the class count comes from the data, as in the tools
