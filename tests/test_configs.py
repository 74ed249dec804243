"""Every config under configs/ parses, and its model builds (official widths on the meta device)."""
import glob

import pytest
import torch

from catgen.models.synthesizers.base_synthesizer import build_network
from catgen.registry import MODELS
from catgen.utils.config import inference_model_cfg, load_config

# models trained from scratch build here; a transfer config (configs/<method>/) needs a source
# checkpoint to train (tested in tests/transfer), but the architecture it ends with is declared
# in the config and builds without it.
CONFIGS = sorted(c for d in ('oasis', 'spade') for c in glob.glob(f'configs/{d}/*.py'))
METHODS = ('cat', 'scratch', 'finetune-all', 'freezed', 'bsa', 'ewc', 'cdc', 'dcl')
TRANSFER_CONFIGS = sorted(c for d in METHODS for c in glob.glob(f'configs/{d}/*.py'))


def test_one_naming_scheme():
    """configs/<method>/<model>_<dataset>[-<variant>]_<shots>.py for transfer runs."""
    import re
    assert len(TRANSFER_CONFIGS) >= 40
    for path in TRANSFER_CONFIGS:
        name = path.split('/')[-1]
        assert re.fullmatch(r'(oasis|spade|stylegan2)_[a-z0-9]+(-[a-z0-9-]+)?(_\d+)?\.py',
                            name), path
    assert not glob.glob('configs/transfer/*.py')


def data_options(path, root):
    """SynthScenes configs read their class count from the data: point them at the tiny copy."""
    if 'synthscenes' not in path:
        return None
    return {f'{loader}.dataset.data_root': str(root)
            for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}


@pytest.mark.parametrize('path', TRANSFER_CONFIGS)
def test_transfer_config_declares_its_architecture(path, tiny_synthscenes):
    cfg = load_config(path, data_options(path, tiny_synthscenes))
    assert cfg.default_scope == 'catgen' and cfg.model.transfer.type
    n = cfg.model.data_preprocessor.num_classes  # the target's, written once
    # SynthScenes target, Cityscapes, ADE20K; 0: an unconditional StyleGAN2 (image data)
    # SynthScenes source (21): the baselines of the Fewshot-SMIS study (docs/fewshot_smis.md)
    assert n in (12, 35, 151) or (n == 0 and 'stylegan2' in path) or (
        n == 21 and '-source_' in path), path
    model = inference_model_cfg(cfg.model, has_checkpoint=True)  # no source needed
    with torch.device('meta'):
        g = build_network(model['generator'], n)
        d = build_network(model['discriminator'], n)
    assert g.num_classes == n and (d is None or d.num_classes == n)
    if cfg.model.transfer.type.startswith('CAT'):
        assert type(g).__name__ == 'AffinityInputGenerator' and g.source_num_classes in (21, 183)
        # the target classes are the training set's
        assert cfg.model.transfer.target_dataset.type == cfg.train_dataloader.dataset.type
        assert 'pipeline' not in cfg.model.transfer.target_dataset
    if 'val_evaluator' in cfg and 'num_classes' in cfg.val_evaluator:
        assert cfg.val_evaluator.num_classes == n


def test_configs_exist():
    names = {c.split('/')[-1] for c in CONFIGS}
    for expected in ('oasis_ade20k.py', 'oasis_coco-stuff.py', 'oasis_cityscapes.py',
                     'spade_ade20k.py', 'spade_coco-stuff.py', 'spade_cityscapes.py',
                     'oasis_synthscenes-source.py'):
        assert expected in names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_parses_and_model_builds(path, tiny_synthscenes):
    cfg = load_config(path, data_options(path, tiny_synthscenes))
    assert cfg.default_scope == 'catgen'
    n = cfg.model.data_preprocessor.num_classes  # the data set's (filled in when not written)
    assert n == {'ade20k': 151, 'coco-stuff': 183, 'cityscapes': 35,
                 'synthscenes-source': 21}[path.split('_', 1)[1][:-3]]
    if 'val_evaluator' in cfg:
        assert cfg.val_evaluator.num_classes == n
    with torch.device('meta'):  # official widths: build G and D without allocating
        g = build_network(cfg.model.generator, n)
        d = build_network(cfg.model.discriminator, n)
    assert g.num_classes == n and d.num_classes == n
    assert sum(p.numel() for p in g.parameters()) > 0 and sum(p.numel() for p in d.parameters())
    if 'synthscenes' in path:  # small: the whole synthesizer
        model = MODELS.build(cfg.model)
        assert type(model).__name__ == cfg.model.type


@pytest.mark.parametrize('name,g,d', [('oasis_ade20k', 74_314_691, 22_258_904),
                                      ('oasis_coco-stuff', 75_199_427, 22_260_984),
                                      ('oasis_cityscapes', 71_107_523, 22_251_364)])
def test_official_oasis_configs_have_official_sizes(name, g, d):
    cfg = load_config(f'configs/oasis/{name}.py')
    n = cfg.model.data_preprocessor.num_classes
    with torch.device('meta'):
        gen = build_network(cfg.model.generator, n)
        disc = build_network(cfg.model.discriminator, n)
    assert sum(p.numel() for p in gen.parameters()) == g
    assert sum(p.numel() for p in disc.parameters()) == d
