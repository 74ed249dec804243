"""End to end through the tools: train a tiny OASIS, resume it, test it, synthesize with it."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import synthesize as synthesize_tool  # noqa: E402
import test as test_tool  # noqa: E402
import train as train_tool  # noqa: E402
from conftest import tiny_oasis_options  # noqa: E402

from catgen.utils.checkpoint import safe_load  # noqa: E402

CONFIG = osp.join(ROOT, 'configs/oasis/oasis_synthscenes-source.py')


def options(data_root, work_dir, **kw):
    out = []
    for k, v in tiny_oasis_options(data_root, work_dir, **kw).items():
        if k in ('custom_hooks', 'randomness', 'work_dir'):
            continue  # set through the config file below
        out.append(f'{k}={v}')
    return out


def train(argv):
    train_tool.main(argv)


@pytest.fixture
def trained(tiny_synthscenes, tmp_path):
    work = tmp_path / 'work'
    train([CONFIG, '--work-dir', str(work), '--cfg-options', *options(tiny_synthscenes, work),
           'custom_hooks.0.interval=2'])  # the sample grid hook
    return work


def test_console_shows_a_summary_and_the_log_file_has_everything(tiny_synthscenes, tmp_path,
                                                                 capsys):
    work = tmp_path / 'work'
    train([CONFIG, '--work-dir', str(work), '--cfg-options', *options(tiny_synthscenes, work)])
    console = capsys.readouterr().out
    log = next(work.glob('*/*.log')).read_text()
    for long_record in ('Hooks will be executed', 'Config:', 'System environment',
                        'is not a meta file', 'FileClient'):
        assert long_record not in console, long_record
    for record in ('Hooks will be executed', 'Config:', 'System environment'):
        assert record in log, record
    assert 'config configs/oasis/oasis_synthscenes-source.py' in console
    assert 'model OASISSynthesizer, generator OASISGenerator' in console
    assert 'train data SynthScenesDataset source train' in console
    assert 'full config, environment and hook order: ' in console
    assert 'Iter(train) [2/2]' in console and 'color/mean_dist' in console


def test_train_writes_checkpoint_grid_ids_and_resumes(trained, tiny_synthscenes):
    work = trained
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file() and (work / 'last_checkpoint').is_file()
    # fixed-input sample grid: 8 columns; rows: label, 2 generated (num_noises=2), real;
    # 64x64 tiles with 2 px padding
    grid = np.asarray(Image.open(work / 'samples' / 'final.png'))
    assert grid.shape == (4 * 66 + 2, 8 * 66 + 2, 3)
    assert (work / 'samples' / 'iter_000002.png').is_file()
    ids = (work / 'train_ids.txt').read_text().split()
    assert len(ids) == 16 and ids[0] == '000000'
    state = safe_load(ckpt)
    assert state['meta']['iter'] == 2
    saved_g = {k: v for k, v in state['state_dict'].items() if k.startswith('generator.')}
    assert any(k.startswith('generator_ema.') for k in state['state_dict'])

    # resume: the Runner restores iteration 2 and the weights, then trains to 4
    from mmengine.hooks import Hook

    seen = {}

    class Probe(Hook):
        def before_train(self, runner):
            seen['iter'] = runner.iter
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            seen['equal'] = all(torch.equal(v, model.state_dict()[k]) for k, v in saved_g.items())

    runner = train_tool.build_runner([CONFIG, '--work-dir', str(work), '--resume', '--cfg-options',
                                      *options(tiny_synthscenes, work, max_iters=4)])
    runner.register_hook(Probe(), priority='LOWEST')
    runner.train()
    assert seen == {'iter': 2, 'equal': True}
    assert (work / 'iter_4.pth').is_file()
    assert safe_load(work / 'iter_4.pth')['meta']['iter'] == 4


def test_test_tool_writes_metrics_and_synthesize_tool_writes_images(trained, tiny_synthscenes,
                                                                     tmp_path):
    ckpt = str(trained / 'iter_2.pth')
    opts = options(tiny_synthscenes, trained)
    # the config's test evaluator scores with the zoo's source segmenter; the tiny data set
    # needs only the colour distance
    config = tmp_path / 'tiny_test.py'
    config.write_text(f"_base_ = ['{CONFIG}']\ntest_evaluator = [dict(type='ClassColorDistance')]\n")
    metrics = test_tool.main([str(config), ckpt, '--work-dir', str(tmp_path / 'test'),
                              '--cfg-options', *opts])
    written = json.loads((tmp_path / 'test' / 'metrics.json').read_text())
    assert set(written) == set(metrics) and 'color/mean_dist' in written
    assert 0 <= written['color/mean_dist'] <= 255 * 3 ** 0.5

    labels = tiny_synthscenes / 'source' / 'annotations' / 'val'
    out = tmp_path / 'synth'
    synthesize_tool.main([CONFIG, ckpt, '--labels', str(labels), '--out', str(out),
                          '--num-samples', '2', '--cfg-options', *opts])
    files = sorted(os.listdir(out))
    assert len(files) == 16 and files[0] == '000000_0.png'
    a = np.asarray(Image.open(out / '000000_0.png'))
    b = np.asarray(Image.open(out / '000000_1.png'))
    assert a.shape == (64, 64, 3) and not np.array_equal(a, b)  # different noise, different image
    assert not any(f.startswith('.') for f in files)  # no temporary files left
