import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from catgen.apis import dataset_sample_grid, init_synthesizer
from catgen.registry import DATASETS, MODELS
from catgen.utils.config import fill_num_classes

ROOT = Path(__file__).resolve().parents[2]
PAD, SCALE, H = 2, 2, 64


@pytest.fixture
def tiny_model_and_data(tiny_oasis_cfg, tmp_path):
    cfg = fill_num_classes(tiny_oasis_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'm.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    return str(cfg_path), str(ckpt), DATASETS.build(cfg.test_dataloader.dataset)


def tile(grid, row, col, margin):
    """The tile at (row, col) of a grid with left margin ``margin``."""
    step = H * SCALE + PAD
    y, x = PAD + row * step, margin + PAD + col * step
    return grid[y:y + H * SCALE, x:x + H * SCALE]


def test_rows_per_model_and_sample_fixed_noise_and_real_row(tiny_model_and_data, tmp_path):
    cfg, ckpt, dataset = tiny_model_and_data
    model = init_synthesizer(cfg, ckpt)
    out = tmp_path / 'grids' / 'g.png'
    grid = dataset_sample_grid([('a', model), ('b', model)], dataset, out=out, num_maps=3,
                               num_samples=2, scale=SCALE)
    rows = 1 + 2 * 2 + 1  # label | a #1 | a #2 | b #1 | b #2 | real
    assert grid.shape[0] == rows * (H * SCALE + PAD) + PAD
    margin = grid.shape[1] - (3 * (H * SCALE + PAD) + PAD)
    assert margin > 0  # row titles
    assert np.array_equal(np.asarray(Image.open(out)), grid)
    # the same model on the same fixed noise draws the same image; another sample differs
    assert np.array_equal(tile(grid, 1, 0, margin), tile(grid, 3, 0, margin))
    assert not np.array_equal(tile(grid, 1, 0, margin), tile(grid, 2, 0, margin))
    # the last row is the real image, upscaled
    real = dataset[0]['inputs']['img'].numpy().transpose(1, 2, 0)
    assert np.array_equal(tile(grid, rows - 1, 0, margin), real.repeat(2, 0).repeat(2, 1))
    # a second call gives the same picture (noise of sample k of map i is fixed)
    again = dataset_sample_grid([('a', model)], dataset, num_maps=3, num_samples=2, scale=SCALE)
    assert again.shape[1] == grid.shape[1]
    assert np.array_equal(again[:3 * (H * SCALE + PAD)], grid[:3 * (H * SCALE + PAD)])


def test_bad_arguments_are_refused(tiny_model_and_data):
    cfg, ckpt, dataset = tiny_model_and_data
    model = init_synthesizer(cfg, ckpt)
    with pytest.raises(ValueError, match='at least one'):
        dataset_sample_grid([], dataset)
    with pytest.raises(ValueError, match='must be >= 1'):
        dataset_sample_grid([('a', model)], dataset, num_maps=0)
    other = init_synthesizer(cfg, ckpt)
    other.data_preprocessor.num_classes += 1
    with pytest.raises(ValueError, match='label channels'):
        dataset_sample_grid([('a', model), ('other', other)], dataset, num_maps=2)


def test_tool_writes_the_grid_and_refuses_a_folder(tiny_model_and_data, tmp_path, capsys):
    cfg, ckpt, _ = tiny_model_and_data
    spec = importlib.util.spec_from_file_location('catgen_tool_sample_grid',
                                                  ROOT / 'tools' / 'sample_grid.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'grid.png'
    tool.main([cfg, ckpt, '--out', str(out), '--num-maps', '2', '--num-samples', '1',
               '--threads', '1'])
    grid = np.asarray(Image.open(out))
    assert grid.shape[0] == 3 * (H * SCALE + PAD) + PAD
    with pytest.raises(SystemExit):
        tool.main([cfg, ckpt, '--out', str(tmp_path)])
    assert '--out must be a .png file path' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([cfg, ckpt, '--out', str(out), '--num-samples', '0'])
    assert '--num-samples must be >= 1' in capsys.readouterr().err
