"""The Fewshot-SMIS configs: the official one declares the official encoder, the SynthScenes ones
build and name their data, modes and shots."""
import glob

import pytest
import torch

from catgen.registry import MODELS
from catgen.utils.config import load_config

CONFIGS = sorted(glob.glob('configs/fewshot-smis/*.py'))


def test_official_config_declares_the_official_encoder():
    cfg = load_config('configs/fewshot-smis/fewshot-smis_ade20k_5shot.py')
    assert cfg.model.data_preprocessor.num_classes == 151
    enc = dict(cfg.model.encoder, in_channels=151, num_styles=14, style_dim=512, input_size=256)
    with torch.device('meta'):
        encoder = MODELS.build(enc)
    assert sum(p.numel() for p in encoder.parameters()) == 209_535_936
    assert cfg.model.inversion.steps == 2000 and cfg.model.inversion.perceptual_weight == 0.8
    assert cfg.optim_wrapper.encoder.optimizer == dict(type='Ranger', lr=1e-4)
    assert cfg.train_dataloader.batch_size == 2 and cfg.train_cfg.max_iters == 100_000
    assert cfg.train_dataloader.dataset.num_shots == 5


@pytest.mark.parametrize('path', [c for c in CONFIGS if 'synthscenes' in c])
def test_synthscenes_configs_build(path, tiny_synthscenes):
    opts = {f'{k}.dataset.data_root': str(tiny_synthscenes)
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    cfg = load_config(path, dict(opts, **{'model.prior_checkpoint': None,
                                          'model.latent_avg_samples': 16}))
    shots = 1 if '_1shot' in path else 5
    assert cfg.train_dataloader.dataset.num_shots == shots
    assert cfg.train_dataloader.dataset.domain == 'source'
    sparse = path.endswith('-sparse.py')
    assert cfg.model.mode == ('sparse' if sparse else 'dense')
    pipelines = (cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline)
    for pipeline in pipelines:  # sparse: scribbles in training AND evaluation
        assert any(t['type'] == 'SimulateScribbles' for t in pipeline) == sparse
    assert any(h['type'] == 'PriorInversionHook' for h in cfg.custom_hooks)
    model = MODELS.build(cfg.model)
    assert model.encoder.in_channels == 21 and model.generator.size == 64
