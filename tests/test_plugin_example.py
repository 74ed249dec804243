"""The example third-party plugin (examples/plugins/catgen_l2sp) works with no change in catgen:
its config's custom_imports registers a strategy and an affinity estimator, and tools/train.py
trains with the strategy."""
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PLUGIN = osp.join(ROOT, 'examples', 'plugins', 'catgen_l2sp')
PLUGIN_CONFIG = osp.join(PLUGIN, 'configs', 'l2sp_oasis_synthscenes_100.py')
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import train as train_tool  # noqa: E402
from conftest import tiny_oasis_options  # noqa: E402


@pytest.fixture
def plugin_on_path(monkeypatch):
    monkeypatch.syspath_prepend(PLUGIN)


def tiny_source_checkpoint(data_root, path):
    """A tiny source OASIS (21 SynthScenes source channels), random weights, catgen format."""
    from catgen.registry import MODELS
    from catgen.utils.config import fill_num_classes
    cfg = Config.fromfile(osp.join(ROOT, 'configs/oasis/oasis_synthscenes-source.py'))
    cfg.merge_from_dict(tiny_oasis_options(data_root, osp.dirname(path)))
    fill_num_classes(cfg)  # the class count comes from the data, as in the tools
    torch.manual_seed(1)
    model = MODELS.build(cfg.model)
    torch.save({'meta': {'iter': 0}, 'state_dict': model.state_dict()}, path)
    return path


def test_plugin_strategy_trains_through_tools_train(plugin_on_path, tiny_synthscenes, tmp_path):
    source = tiny_source_checkpoint(tiny_synthscenes, str(tmp_path / 'source.pth'))
    work = tmp_path / 'work'
    config = tmp_path / 'tiny_l2sp.py'  # the plugin's config, with hooks for a 2-iteration run
    config.write_text(f'_base_ = [{PLUGIN_CONFIG!r}]\n'
                      'custom_hooks = []\n'
                      'randomness = dict(seed=0, deterministic=True)\n')
    options = [f'{k}={v}' for k, v in tiny_oasis_options(tiny_synthscenes, work).items()
               if k not in ('custom_hooks', 'randomness', 'work_dir')]
    options += [f'model.transfer.source_checkpoint={source}',
                'train_dataloader.dataset.num_shots=5']
    train_tool.main([str(config), '--work-dir', str(work), '--cfg-options', *options])
    assert (work / 'iter_2.pth').is_file()
    logs = [json.loads(line) for f in work.glob('*/vis_data/scalars.json')
            for line in f.read_text().splitlines()]
    l2sp = [entry['loss_l2sp'] for entry in logs if 'loss_l2sp' in entry]
    assert len(l2sp) == 2 and l2sp[0] == 0 and l2sp[1] > 0  # zero at the source, then grows
    from catgen.registry import TRANSFER_STRATEGIES
    assert TRANSFER_STRATEGIES.get('L2SP').__module__ == 'catgen_l2sp.l2sp'


def test_plugin_estimator_builds_from_the_registry_after_the_import(plugin_on_path):
    Config.fromfile(PLUGIN_CONFIG)  # custom_imports runs here
    from catgen.registry import AFFINITY_ESTIMATORS
    est = AFFINITY_ESTIMATORS.build(dict(type='NameSimilarityAffinity', scale=10.0))
    targets, sources = ['grass_field', 'night-sky'], ['sky', 'grass', 'road']
    A = est.estimate(targets, sources)
    assert A.shape == (2, 3) and abs(A.values.sum(1) - 1).max() < 1e-9
    assert A.row('grass_field').argmax() == 1 and A.row('night-sky').argmax() == 0
    assert A.meta['estimator'] == 'name_similarity'
