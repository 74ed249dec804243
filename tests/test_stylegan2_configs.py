"""The StyleGAN2 configs parse and build; the official one has the official sizes."""
import glob

import pytest
import torch

from catgen.models.synthesizers.base_synthesizer import build_network
from catgen.registry import MODELS
from catgen.utils.config import load_config

CONFIGS = sorted(glob.glob('configs/stylegan2/*.py'))


def test_official_256_config_has_official_sizes_and_settings():
    cfg = load_config('configs/stylegan2/stylegan2_256.py')
    assert cfg.model.data_preprocessor.num_classes == 0
    with torch.device('meta'):
        g = build_network(cfg.model.generator, 0)
        d = build_network(cfg.model.discriminator, 0)
    assert sum(p.numel() for p in g.parameters()) == 30_034_338
    assert sum(p.numel() for p in d.parameters()) == 28_864_129
    assert cfg.model.r1_gamma == 10 and cfg.model.r1_interval == 16
    assert cfg.model.path_length_weight == 2 and cfg.model.path_length_interval == 4
    g_opt = cfg.optim_wrapper.generator.optimizer
    d_opt = cfg.optim_wrapper.discriminator.optimizer
    assert g_opt.lr == pytest.approx(0.0016) and g_opt.betas[1] == pytest.approx(0.99 ** 0.8)
    assert d_opt.lr == pytest.approx(0.002 * 16 / 17)
    assert cfg.model.ema_momentum == pytest.approx(1 - 0.5 ** (32 / 10000))


@pytest.mark.parametrize('path', [c for c in CONFIGS if 'synthscenes' in c])
def test_synthscenes_configs_build(path, tiny_synthscenes):
    opts = {f'{loader}.dataset.data_root': str(tiny_synthscenes)
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    cfg = load_config(path, opts)
    assert cfg.default_scope == 'catgen'
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'StyleGAN2Synthesizer'
    assert model.generator.output_size == (64, 64)
