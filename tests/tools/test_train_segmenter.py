"""tools/train_segmenter.py: 2 iterations of the SynthScenes segmenter config on tiny data, then
the checkpoint loads with init_mmseg_model and carries the class names."""
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / 'tools' / 'train_segmenter.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('train_segmenter_tool', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_options(data_root):
    return [f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}',
            f'test_dataloader.dataset.data_root={data_root}',
            'train_dataloader.batch_size=2', 'val_dataloader.batch_size=8',
            'model.backbone.base_channels=4', 'model.decode_head.in_channels=4',
            'model.decode_head.channels=4', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'param_scheduler.0.end=2', 'default_hooks.checkpoint.interval=2',
            'default_hooks.logger.interval=1', 'default_hooks.visualization.draw=False']


@pytest.mark.parametrize('domain,n', [('source', 20)])
def test_two_iterations_write_a_loadable_checkpoint(tiny_synthscenes, tmp_path, domain, n):
    from mmengine.registry import DefaultScope

    from catgen.utils.setup_env import guarded_default_scope, init_mmseg_model
    before = DefaultScope.get_current_instance().scope_name
    work = tmp_path / 'work'
    with guarded_default_scope(None):  # the Runner makes 'mmseg' the default scope
        load_tool().main([f'configs/segmenters/fcn_synthscenes-{domain}.py', '--work-dir',
                          str(work), '--cfg-options', *tiny_options(tiny_synthscenes)])
    assert DefaultScope.get_current_instance().scope_name == before
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    model = init_mmseg_model(work / f'fcn_synthscenes-{domain}.py', ckpt)
    assert DefaultScope.get_current_instance().scope_name == before
    assert model.decode_head.num_classes == n
    assert len(model.dataset_meta['classes']) == n and model.dataset_meta['classes'][0] == 'sky'


def test_config_errors(tmp_path):
    tool = load_tool()
    with pytest.raises(FileNotFoundError, match='does not exist'):
        tool.build_cfg(tool.parse_args([str(tmp_path / 'nope.py')]))
    with pytest.raises(ValueError, match='num_classes=5 but train_dataloader'):
        tool.build_cfg(tool.parse_args(['configs/segmenters/fcn_synthscenes-target.py',
                                        '--cfg-options', 'model.decode_head.num_classes=5']))
    with pytest.raises(ValueError, match="default_scope = 'mmseg'"):
        tool.build_cfg(tool.parse_args(['configs/oasis/oasis_synthscenes-source.py']))
