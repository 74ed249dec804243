"""Switching any transfer config to a folder data set takes one short config: the class count
and CAT's target classes follow the data set (docs/datasets.md, "My own data")."""
import json
import os.path as osp
import shutil
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import train as train_tool  # noqa: E402

from catgen.utils.checkpoint import safe_load  # noqa: E402
from catgen.utils.config import load_config  # noqa: E402

#: the lines docs/datasets.md shows, with the data root and the base config filled in
MY_DATA = '''
_base_ = ['{base}']
data_root = '{root}'
my_data = dict(type='FolderSISDataset', data_root=data_root)
train_dataloader = dict(dataset=dict(my_data, _delete_=True, split='train', num_shots=5,
                                     pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(my_data, _delete_=True, split='val',
                                   pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
'''


def folder_dataset(synthscenes, root, num_names):
    """A folder data set (generic layout) from the tiny SynthScenes target images, whose
    classes.json declares ``num_names`` classes (more names than ids used is allowed)."""
    for kind in ('images', 'annotations'):
        for split in ('train', 'val'):
            shutil.copytree(synthscenes / 'target' / kind / split, root / kind / split)
    names = [f'class{i}' for i in range(num_names)]
    (root / 'classes.json').write_text(json.dumps(dict(classes=names)))
    return root


def test_switching_a_transfer_config_to_a_folder_data_set(tiny_synthscenes, tmp_path):
    root = folder_dataset(tiny_synthscenes, tmp_path / 'my_scenes', num_names=13)
    cfg_path = tmp_path / 'finetune_my_data.py'
    cfg_path.write_text(MY_DATA.format(
        base=osp.join(ROOT, 'configs/finetune-all/oasis_synthscenes_100.py'), root=root))
    cfg = load_config(str(cfg_path))
    assert cfg.model.data_preprocessor.num_classes == 14  # 13 classes + don't care
    assert cfg.val_evaluator.num_classes == 14
    # CAT: the same lines; its target classes are the folder data set's
    cat_path = tmp_path / 'cat_my_data.py'
    cat_path.write_text(MY_DATA.format(
        base=osp.join(ROOT, 'configs/cat/oasis_synthscenes_100.py'), root=root))
    cat = load_config(str(cat_path))
    assert cat.model.transfer.target_dataset.type == 'FolderSISDataset'
    assert cat.model.transfer.target_dataset.data_root == str(root)
    assert cat.model.generator.type == 'AffinityInputGenerator'

    # and it trains: 2 iterations of finetune-all from a tiny source
    from mmengine.config import Config

    from catgen.registry import MODELS
    from catgen.utils.config import fill_num_classes
    src_cfg = Config.fromfile(osp.join(ROOT, 'configs/oasis/oasis_synthscenes-source.py'))
    src_cfg.train_dataloader.dataset.data_root = str(tiny_synthscenes)
    fill_num_classes(src_cfg)
    src_cfg.model.generator.update(base_channels=4, spade_hidden=8, z_dim=4)
    src_cfg.model.discriminator.update(base_channels=2)
    torch.manual_seed(0)
    ckpt = tmp_path / 'src.pth'
    torch.save({'meta': {}, 'state_dict': MODELS.build(src_cfg.model).state_dict()}, ckpt)
    work = tmp_path / 'work'
    train_tool.main([str(cfg_path), '--work-dir', str(work), '--cfg-options',
                     f'model.transfer.source_checkpoint={ckpt}',
                     'model.generator.base_channels=4', 'model.generator.spade_hidden=8',
                     'model.generator.z_dim=4', 'model.discriminator.base_channels=2',
                     'train_dataloader.batch_size=2', 'train_cfg.max_iters=2',
                     'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=2',
                     'custom_hooks=[]'])
    state = safe_load(work / 'iter_2.pth')['state_dict']
    assert state['generator.fc.weight'].shape[1] == 4 + 14  # noise + the folder's 14 channels
    assert state['discriminator.layer_up_last.weight'].shape[0] == 14 + 1
