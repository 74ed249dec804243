"""A trained checkpoint plus the config in its work dir is the whole model.

CAT and EWC train for 2 iterations through tools/train.py; then the source checkpoint and the
target training data are moved away, and tools/test.py, tools/synthesize.py and
init_synthesizer still work from the work dir alone (the affinity is never estimated again,
the Fisher never recomputed).
"""
import json
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))

import synthesize as synthesize_tool  # noqa: E402
import test as test_tool  # noqa: E402
import train as train_tool  # noqa: E402

from catgen.apis import init_synthesizer  # noqa: E402
from catgen.registry import MODELS  # noqa: E402
from catgen.utils.checkpoint import safe_load  # noqa: E402

SHRINK_G = "base_channels=4, spade_hidden=8, z_dim=4"
SHRINK_D = "base_channels=2"


def loaders(root):
    return f'''
train_dataloader = dict(batch_size=2, dataset=dict(data_root='{root}', num_shots=25))
val_dataloader = dict(batch_size=4, dataset=dict(data_root='{root}'))
test_dataloader = dict(batch_size=4, dataset=dict(data_root='{root}'))
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
custom_hooks = []
'''


@pytest.fixture
def setup(tiny_synthscenes, tmp_path):
    """A private copy of the tiny SynthScenes data and a tiny source checkpoint."""
    data = tmp_path / 'data'
    shutil.copytree(tiny_synthscenes, data)
    from mmengine.config import Config

    from catgen.utils.config import fill_num_classes
    cfg = Config.fromfile(osp.join(ROOT, 'configs/oasis/oasis_synthscenes-source.py'))
    cfg.train_dataloader.dataset.data_root = str(data)
    fill_num_classes(cfg)  # 21: the source classes of the data
    cfg.model.generator.update(base_channels=4, spade_hidden=8, z_dim=4)
    cfg.model.discriminator.update(base_channels=2)
    torch.manual_seed(0)
    source = MODELS.build(cfg.model)
    with torch.no_grad():  # spectral norm's power iteration: a D that has run, as a trained one
        for _ in range(10):
            source.discriminator(torch.randn(2, 3, 64, 64))
    classes = json.loads((data / 'classes.json').read_text())['source']['classes']
    ckpt = tmp_path / 'source' / 'src.pth'
    ckpt.parent.mkdir()
    torch.save({'meta': {'dataset_meta': {'classes': ['unlabeled'] + classes}},
                'state_dict': source.state_dict()}, ckpt)
    return data, ckpt


def write_cfg(path, base, body):
    path.write_text(f"_base_ = ['{osp.join(ROOT, base)}']\n{body}")
    return str(path)


def move_away(data, ckpt, tmp_path):
    """Make the source checkpoint and the target training data unreachable."""
    gone = tmp_path / 'gone'
    gone.mkdir()
    shutil.move(str(ckpt), gone / 'src.pth')
    for sub in ('images', 'annotations'):
        shutil.move(str(data / 'target' / sub / 'train'), gone / f'{sub}_train')
    shutil.move(str(data / 'target' / 'few_shot'), gone / 'few_shot')


@pytest.mark.parametrize('method', ['cat', 'ewc'])
def test_checkpoint_and_work_dir_config_are_all_inference_needs(method, setup, tmp_path):
    data, ckpt = setup
    if method == 'cat':
        base = 'configs/cat/oasis_synthscenes-oracle_100.py'
        body = f'''
model = dict(
    generator=dict(generator=dict({SHRINK_G})), discriminator=dict({SHRINK_D}),
    transfer=dict(source_checkpoint='{ckpt}', affinity=dict(classes_json='{data}'),
                  source_classes=dict(data_root='{data}')))
'''
    else:
        base = 'configs/ewc/oasis_synthscenes_100.py'
        body = f'''
model = dict(generator=dict({SHRINK_G}), discriminator=dict({SHRINK_D}),
             transfer=dict(source_checkpoint='{ckpt}', source_data=dict(data_root='{data}'),
                           num_fisher_samples=2, fisher_batch_size=2))
'''
    cfg = write_cfg(tmp_path / f'{method}.py', base, body + loaders(data))
    work = tmp_path / 'work'
    train_tool.main([cfg, '--work-dir', str(work)])
    trained = work / 'iter_2.pth'
    dumped = work / f'{method}.py'  # MMEngine dumps the resolved config into the work dir
    assert trained.is_file() and dumped.is_file()
    meta = safe_load(trained)['meta']
    assert meta['transfer']['type'] == ('CAT' if method == 'cat' else 'EWC')
    if method == 'cat':
        assert (work / 'affinity.json').is_file() and (work / 'affinity.png').is_file()
        saved = np.asarray(meta['transfer']['affinity']['values'])
        assert saved.shape == (11, 20)

    move_away(data, ckpt, tmp_path)
    model = init_synthesizer(str(dumped), str(trained))
    state = safe_load(trained)['state_dict']
    own = model.state_dict()
    for k, v in own.items():  # every weight is the checkpoint's
        assert torch.equal(v, state[k]), k
    assert model.transfer is None  # training machinery (Fisher, source copies) not rebuilt

    metrics = test_tool.main([str(dumped), str(trained), '--work-dir', str(tmp_path / 'test')])
    assert metrics and all(np.isfinite(float(v)) for v in metrics.values())
    out = tmp_path / 'samples'
    written = synthesize_tool.main([str(dumped), str(trained), '--labels',
                                    str(data / 'target' / 'annotations' / 'val'),
                                    '--out', str(out)])
    assert len(written) == 8 and all(p.is_file() for p in written)


def test_none_is_refused_for_a_model_that_needs_training(setup, tmp_path):
    data, ckpt = setup
    cfg = write_cfg(tmp_path / 'ft.py', 'configs/finetune-all/oasis_synthscenes_100.py', f'''
model = dict(generator=dict({SHRINK_G}), discriminator=dict({SHRINK_D}),
             transfer=dict(source_checkpoint='{ckpt}'))
''' + loaders(data))
    with pytest.raises(ValueError, match='needs training'):
        test_tool.main([cfg, 'none', '--work-dir', str(tmp_path / 'w')])
    with pytest.raises(ValueError, match='needs training'):
        synthesize_tool.main([cfg, 'none', '--labels', str(data / 'target' / 'annotations' /
                                                            'val'), '--out', str(tmp_path / 'o')])
