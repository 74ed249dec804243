"""tools/train.py --amp: both optimizers run their forward passes under bf16 autocast on CPU,
training steps update weights to finite values; with CUDA, MMEngine's AmpOptimWrapper is used."""
import os.path as osp
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import train as train_tool  # noqa: E402
from conftest import tiny_oasis_options  # noqa: E402

CONFIG = osp.join(ROOT, 'configs/oasis/oasis_synthscenes-source.py')


def _argv(data_root, work):
    opts = [f'{k}={v}' for k, v in tiny_oasis_options(data_root, work).items()
            if k not in ('custom_hooks', 'randomness', 'work_dir')]
    return [CONFIG, '--work-dir', str(work), '--amp', '--cfg-options', *opts]


def test_amp_trains_both_parts_in_bf16_on_cpu(tiny_synthscenes, tmp_path):
    from catgen.engine.optimizers import AutocastOptimWrapper
    from catgen.models.synthesizers.base_synthesizer import unwrap
    runner = train_tool.build_runner(_argv(tiny_synthscenes, tmp_path / 'work'))
    runner._init_model_weights = lambda: None  # keep the weights we snapshot below
    model = unwrap(runner.model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}

    seen = {}

    def record(part):
        def hook(module, args, output):
            seen[part] = output.dtype
        return hook

    model.generator.register_forward_hook(record('generator'))
    model.discriminator.register_forward_hook(record('discriminator'))
    runner.train()
    wrappers = runner.optim_wrapper
    for part in ('generator', 'discriminator'):
        assert isinstance(wrappers[part], AutocastOptimWrapper)
        assert wrappers[part].dtype is torch.bfloat16 and wrappers[part].scaler is None
        # the forward passes ran under bf16 autocast
        assert seen[part] is torch.bfloat16
        moved = [k for k, v in model.state_dict().items()
                 if k.startswith(part + '.') and v.is_floating_point()
                 and not torch.equal(v, before[k])]
        assert moved, f'{part} weights did not change'
        assert all(torch.isfinite(v).all() for k, v in model.state_dict().items()
                   if v.is_floating_point())
        # master weights stay fp32
        assert all(p.dtype is torch.float32 for p in getattr(model, part).parameters())
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()


def test_amp_uses_mmengine_amp_optim_wrapper_with_cuda(monkeypatch):
    from mmengine.config import Config

    from catgen.utils.config import apply_amp
    cfg = Config.fromfile(CONFIG)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    apply_amp(cfg)
    for part in ('generator', 'discriminator'):
        assert cfg.optim_wrapper[part]['type'] == 'AmpOptimWrapper'
        assert cfg.optim_wrapper[part]['loss_scale'] == 'dynamic'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = apply_amp(Config.fromfile(CONFIG))
    assert {cfg.optim_wrapper[p]['type'] for p in ('generator', 'discriminator')} == {
        'AutocastOptimWrapper'}
