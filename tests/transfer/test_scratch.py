"""Scratch: nothing is loaded, everything trains; every SynthScenes strategy gets one budget."""
import glob
import os
import sys

import pytest
import torch
from mmengine.config import Config

from catgen.registry import MODELS
from catgen.transfer.scratch import Scratch  # noqa: F401 (registers)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import synth_cfg  # noqa: E402


def oasis_cfg(n, transfer=None):
    return dict(synth_cfg(n, transfer), ema_momentum=0.5)


def test_scratch_keeps_random_init_and_trains_everything(tmp_path):
    torch.manual_seed(1)
    src = MODELS.build(oasis_cfg(4))
    ckpt = tmp_path / 'src.pth'
    torch.save({'meta': {}, 'state_dict': src.state_dict()}, ckpt)
    torch.manual_seed(0)
    fresh = MODELS.build(oasis_cfg(4))
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='ignored'):
        model = MODELS.build(oasis_cfg(4, dict(type='Scratch', source_checkpoint=str(ckpt))))
    fresh_state, src_state = fresh.state_dict(), src.state_dict()
    for k, v in model.state_dict().items():
        if k.startswith('transfer.'):
            continue
        assert torch.equal(v, fresh_state[k]), k
    assert not torch.equal(model.generator.fc.weight, src_state['generator.fc.weight'])
    assert all(p.requires_grad for part in (model.generator, model.discriminator)
               for p in part.parameters())


def test_synthscenes_transfer_configs_share_one_budget():
    paths = sorted(glob.glob('configs/*/oasis_synthscenes_[0-9]*.py')
                   + glob.glob('configs/cat/oasis_synthscenes-*_[0-9]*.py'))
    assert len(paths) >= 8 * 5 + 1  # 8 strategies x 5 shot counts, + the oracle
    budgets = set()
    for path in paths:
        cfg = Config.fromfile(path)
        shots = int(path.rsplit('_', 1)[1][:-3])
        assert cfg.train_dataloader.dataset.num_shots == shots, path
        target = cfg.model.transfer.get('target_dataset')
        if target is not None:
            assert target.num_shots == shots, path
        # training images seen, iterations x batch size: the budget (learning rates and the
        # batch size are part of some methods: CDC's batch of 4 runs twice the iterations)
        budgets.add(cfg.train_cfg.max_iters * cfg.train_dataloader.batch_size)
    assert len(budgets) == 1, budgets
