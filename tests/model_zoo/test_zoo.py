import json

import numpy as np
import pytest
import torch

from catgen.apis import init_synthesizer, load_inference_config, synthesize
from catgen.model_zoo import zoo
from catgen.registry import MODELS
from catgen.utils.checkpoint import safe_load

CONFIG = 'configs/oasis/oasis_synthscenes-source.py'
TINY = {'model.generator.base_channels': 4, 'model.generator.spade_hidden': 8,
        'model.generator.z_dim': 4, 'model.discriminator.base_channels': 2,
        'model.data_preprocessor.num_classes': 21}


@pytest.fixture
def tmp_zoo(tmp_path, monkeypatch):
    """An empty zoo in tmp_path, used by every zoo:// path in the test."""
    monkeypatch.setattr(zoo, 'ZOO_DIR', str(tmp_path / 'weights'))
    monkeypatch.setattr(zoo, 'MANIFEST', str(tmp_path / 'zoo.json'))
    return tmp_path


def trained_checkpoint(path):
    """A tiny synthesizer checkpoint as tools/train.py writes it: G, its EMA (different from G,
    as after training), D, optimizer state and meta."""
    torch.manual_seed(0)
    model = MODELS.build(load_inference_config(CONFIG, TINY).model)
    with torch.no_grad():
        for p in model.generator_ema.module.parameters():
            p.add_(0.1)
    torch.save({'state_dict': model.state_dict(), 'optimizer': {'state': {0: torch.ones(99)}},
                'meta': {'iter': 7, 'seed': 0, 'dataset_meta': {'classes': ['a']}}}, path)
    return model


def test_export_keeps_ema_and_discriminator_and_records_the_checksum(tmp_zoo):
    model = trained_checkpoint(tmp_zoo / 'iter_7.pth')
    entry = zoo.export_zoo_checkpoint(str(tmp_zoo / 'iter_7.pth'), 'tiny',
                                      info={'config': CONFIG, 'command': 'train it'})
    slim = torch.load(tmp_zoo / 'weights' / 'tiny.pth', weights_only=True)
    keys = list(slim['state_dict'])
    assert keys and all(k.startswith(('generator_ema.', 'discriminator.')) for k in keys)
    assert any(k.startswith('discriminator.') for k in keys)
    assert 'optimizer' not in slim and slim['meta']['iter'] == 7
    assert slim['meta']['dataset_meta'] == {'classes': ['a']}
    manifest = json.loads((tmp_zoo / 'zoo.json').read_text())
    assert manifest['models']['tiny'] == entry
    assert entry['sha256'] == zoo.file_sha256(tmp_zoo / 'weights' / 'tiny.pth')
    assert entry['config'] == CONFIG and entry['iter'] == 7
    n_params = sum(v.numel() for k, v in model.state_dict().items()
                   if k.startswith(('generator_ema.module.', 'discriminator.'))
                   and v.is_floating_point())
    assert entry['float_values'] == n_params
    assert zoo.resolve_checkpoint('zoo://tiny') == str(tmp_zoo / 'weights' / 'tiny.pth')
    assert zoo.resolve_checkpoint('work_dirs/x.pth') == 'work_dirs/x.pth'
    assert sorted(p.name for p in (tmp_zoo / 'weights').iterdir()) == ['tiny.pth']


def test_slim_checkpoint_loads_the_ema_generator_for_inference(tmp_zoo):
    model = trained_checkpoint(tmp_zoo / 'iter_7.pth')
    zoo.export_zoo_checkpoint(str(tmp_zoo / 'iter_7.pth'), 'tiny')
    loaded = init_synthesizer(CONFIG, 'zoo://tiny', cfg_options=TINY)
    for name, value in model.generator_ema.module.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[name], value), name
        assert torch.equal(loaded.generator_ema.module.state_dict()[name], value), name
    label = np.random.default_rng(0).integers(1, 21, (64, 64))
    assert synthesize(loaded, label, num_samples=1, seed=0).shape == (1, 64, 64, 3)


def test_modified_missing_or_unknown_zoo_files_are_refused(tmp_zoo):
    trained_checkpoint(tmp_zoo / 'iter_7.pth')
    zoo.export_zoo_checkpoint(str(tmp_zoo / 'iter_7.pth'), 'tiny',
                              info={'command': 'python tools/train.py X'})
    with pytest.raises(KeyError, match="No model 'other'.*has: tiny"):
        safe_load('zoo://other')
    file = tmp_zoo / 'weights' / 'tiny.pth'
    data = bytearray(file.read_bytes())
    data[-100] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooChecksumError, match='refuses to load it'):
        safe_load('zoo://tiny')
    file.unlink()
    with pytest.raises(FileNotFoundError, match='python tools/train.py X'):
        safe_load('zoo://tiny')


def test_shipped_zoo_files_match_their_manifest():
    """Every model the repository's manifest lists is present and has the recorded SHA-256."""
    manifest = zoo.load_manifest()
    for name in manifest['models']:
        assert zoo.resolve_checkpoint(f'zoo://{name}').endswith(manifest['models'][name]['file'])


def test_zoo_paths_work_where_pretrained_wrappers_and_caches_take_files(tmp_zoo):
    from catgen.pretrained.base import check_file
    from catgen.utils.cache import FileRef, canonical
    trained_checkpoint(tmp_zoo / 'iter_7.pth')
    zoo.export_zoo_checkpoint(str(tmp_zoo / 'iter_7.pth'), 'tiny')
    file = tmp_zoo / 'weights' / 'tiny.pth'
    assert check_file('zoo://tiny', 'checkpoint', '') == file
    assert canonical(FileRef('zoo://tiny')) == {'file_sha256': zoo.file_sha256(file)}


def test_export_tool_can_refresh_the_ema_statistics_first(tmp_zoo, tiny_oasis_cfg):
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location('catgen_tool_export',
                                                  root / 'tools' / 'export_zoo_model.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    config = tmp_zoo / 'tiny.py'
    tiny_oasis_cfg.dump(str(config))
    torch.manual_seed(0)
    model = MODELS.build(tiny_oasis_cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 3}}, tmp_zoo / 'iter_3.pth')
    entry = tool.main([str(tmp_zoo / 'iter_3.pth'), 'tiny', '--config', str(config),
                       '--command', 'train it', '--refresh-ema-batches', '2'])
    assert entry['ema_norm_stats'] == 'recomputed on 2 training batches'
    assert entry['exported_from'] == 'iter_3.pth' and entry['iter'] == 3
    slim = torch.load(tmp_zoo / 'weights' / 'tiny.pth', weights_only=True)['state_dict']
    before = model.state_dict()
    stats = [k for k in slim if k.startswith('generator_ema.') and k.endswith('running_mean')]
    assert stats and any(not torch.equal(slim[k], before[k]) for k in stats)
    weights = [f'generator_ema.{k}' for k, _ in model.generator_ema.named_parameters()]
    assert all(torch.equal(slim[k], before[k]) for k in weights)
