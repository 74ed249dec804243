"""Every config under configs/ parses, and its model builds (official widths on the meta device)."""
import glob

import pytest
import torch
from mmengine.config import Config

from catgen.registry import MODELS

# models trained from scratch build here; transfer configs (cat/, transfer/) need a source
# checkpoint to build and are tested in tests/transfer; they must parse.
CONFIGS = sorted(c for d in ('oasis', 'spade') for c in glob.glob(f'configs/{d}/*.py'))
TRANSFER_CONFIGS = sorted(c for d in ('cat', 'transfer') for c in glob.glob(f'configs/{d}/*.py'))


@pytest.mark.parametrize('path', TRANSFER_CONFIGS)
def test_transfer_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'catgen' and cfg.model.transfer.type


def test_configs_exist():
    names = {c.split('/')[-1] for c in CONFIGS}
    for expected in ('oasis_ade20k.py', 'oasis_coco-stuff.py', 'oasis_cityscapes.py',
                     'spade_ade20k.py', 'spade_coco-stuff.py', 'spade_cityscapes.py',
                     'oasis_synthscenes-source.py'):
        assert expected in names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_and_model_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'catgen'
    n = cfg.model.data_preprocessor.num_classes
    assert cfg.model.generator.num_classes == n
    if cfg.model.get('discriminator'):
        assert cfg.model.discriminator.num_classes == n
    if 'val_evaluator' in cfg:
        assert cfg.val_evaluator.num_classes == n
    with torch.device('meta'):  # official widths: build G and D without allocating
        g = MODELS.build(cfg.model.generator)
        d = MODELS.build(cfg.model.discriminator)
    assert sum(p.numel() for p in g.parameters()) > 0 and sum(p.numel() for p in d.parameters())
    if 'synthscenes' in path:  # small: the whole synthesizer
        model = MODELS.build(cfg.model)
        assert type(model).__name__ == cfg.model.type


@pytest.mark.parametrize('name,g,d', [('oasis_ade20k', 74_314_691, 22_258_904),
                                      ('oasis_coco-stuff', 75_199_427, 22_260_984),
                                      ('oasis_cityscapes', 71_107_523, 22_251_364)])
def test_official_oasis_configs_have_official_sizes(name, g, d):
    cfg = Config.fromfile(f'configs/oasis/{name}.py')
    with torch.device('meta'):
        gen = MODELS.build(cfg.model.generator)
        disc = MODELS.build(cfg.model.discriminator)
    assert sum(p.numel() for p in gen.parameters()) == g
    assert sum(p.numel() for p in disc.parameters()) == d
