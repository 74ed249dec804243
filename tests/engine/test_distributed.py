"""Distributed training: the set-up, the DDP wrapper, per-sample training noise, and a real
2-process CPU (gloo) run through tools/dist_train.sh that must equal one process with the
same global batch."""
import copy
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools'))
sys.path.insert(0, osp.join(ROOT, 'tests', 'transfer'))

import train as train_tool  # noqa: E402
from tiny_oasis import batch as tiny_batch  # noqa: E402
from tiny_oasis import synth_cfg  # noqa: E402

from catgen.engine.distributed import SeparateDistributedDataParallel, setup_distributed  # noqa
from catgen.engine.optimizers import GANOptimWrapperConstructor  # noqa: E402
from catgen.registry import MODELS  # noqa: E402
from catgen.utils.checkpoint import safe_load  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- set-up and wrapper
def test_setup_scopes_the_wrapper_type_so_mmengine_finds_it():
    from mmengine.registry import MODEL_WRAPPERS
    cfg = setup_distributed(Config(dict(launcher='none', randomness=dict(seed=0))))
    assert cfg.model_wrapper_cfg.type == 'catgen.SeparateDistributedDataParallel'
    # Runner.wrap_model looks the type up in MMEngine's root registry
    assert MODEL_WRAPPERS.get(cfg.model_wrapper_cfg.type) is SeparateDistributedDataParallel
    assert 'diff_rank_seed' not in cfg.randomness  # single process: untouched


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU (gloo) branch')
def test_setup_pytorch_launcher_needs_torchrun_environment(monkeypatch):
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match='torchrun'):
        setup_distributed(Config(dict(launcher='pytorch')))
    with pytest.raises(NotImplementedError, match='slurm'):
        setup_distributed(Config(dict(launcher='slurm')))


@pytest.fixture
def torchrun_env_of_one(monkeypatch):
    """torchrun's environment for a world of one process; the group is destroyed after."""
    import torch.distributed as dist
    assert not dist.is_initialized()
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU (gloo) branch')
def test_setup_pytorch_launcher_inits_gloo_and_per_rank_seeds(torchrun_env_of_one):
    import torch.distributed as dist
    cfg = setup_distributed(Config(dict(launcher='pytorch', randomness=dict(seed=3),
                                        env_cfg=dict(dist_cfg=dict(backend='nccl')))))
    assert dist.is_initialized() and dist.get_backend() == 'gloo'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.randomness == dict(seed=3, diff_rank_seed=True)
    # an explicit choice is kept
    cfg = setup_distributed(Config(dict(launcher='pytorch',
                                        randomness=dict(seed=3, diff_rank_seed=False))))
    assert cfg.randomness.diff_rank_seed is False


@pytest.mark.skipif(torch.cuda.is_available(), reason='builds the wrapper on CPU')
def test_wrapped_synthesizer_saves_and_loads_single_process_keys(torchrun_env_of_one):
    from mmengine.runner.checkpoint import load_state_dict
    setup_distributed(Config(dict(launcher='pytorch')))
    torch.manual_seed(0)
    plain = MODELS.build(synth_cfg(5))
    expected = {k: v.clone() for k, v in plain.state_dict().items()}
    model = copy.deepcopy(plain)
    wrapper = SeparateDistributedDataParallel(model)
    assert type(model.generator).__name__ == 'MMDistributedDataParallel'
    assert model.generator_ema is not None and not hasattr(model.generator_ema, 'reducer')
    saved = model.state_dict()  # what the Runner writes into checkpoints
    assert list(saved) == list(expected)  # no 'generator.module.', same order
    assert all(torch.equal(v, expected[k]) for k, v in saved.items())
    assert list(wrapper.state_dict()) == [f'module.{k}' for k in expected]
    # a distributed run's checkpoint loads into a single-process model, strictly ...
    fresh = MODELS.build(synth_cfg(5))
    fresh.load_state_dict(saved)
    # ... and MMEngine's loader (resume) loads plain keys into the wrapped model
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    load_state_dict(model, expected, strict=True)
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


class _WithLatents(nn.Module):
    def __init__(self):
        super().__init__()
        self.latents = nn.Parameter(torch.zeros(3, 2))


def test_wrapper_refuses_trainable_parts_it_cannot_sync():
    model = nn.Module()
    model.generator, model.discriminator = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)
    model.transfer = _WithLatents()
    with pytest.raises(NotImplementedError, match='transfer has trainable parameters'):
        SeparateDistributedDataParallel(model)


# ---------------------------------------------------------------- per-sample training noise
def _tiny_synth(train_noise='per_sample', n=5, seed=0):
    torch.manual_seed(seed)
    cfg = synth_cfg(n)
    cfg.update(train_noise=train_noise, labelmix_weight=10.0)
    model = MODELS.build(cfg)
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='SGD', lr=0.01)),
        discriminator=dict(optimizer=dict(type='SGD', lr=0.01))))(model)
    return model, optim


def _record_noise(model):
    seen = []
    model.generator.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    return seen


def _subset(data, ids):
    return dict(inputs={k: [v[i] for i in ids] for k, v in data['inputs'].items()},
                data_samples=[data['data_samples'][i] for i in ids])


def test_per_sample_noise_is_a_function_of_sample_iteration_and_draw():
    data = tiny_batch(5, 4)
    MessageHub.get_current_instance().update_info('iter', 7)
    model, optim = _tiny_synth()
    seen = _record_noise(model)
    model.train_step(data, optim)
    z_d, z_g = seen  # D's update, then G's
    assert z_d.shape == (4, 4) and not torch.allclose(z_d, z_g)  # fresh noise per update

    model2, optim2 = _tiny_synth()  # another "rank": samples 2 and 0 only
    seen2 = _record_noise(model2)
    model2.train_step(_subset(data, [2, 0]), optim2)
    assert torch.equal(seen2[0], z_d[[2, 0]]) and torch.equal(seen2[1], z_g[[2, 0]])

    MessageHub.get_current_instance().update_info('iter', 8)
    model2.train_step(_subset(data, [2, 0]), optim2)
    assert not torch.allclose(seen2[2], z_d[[2, 0]])  # another iteration, other noise


def test_per_sample_step_ignores_and_restores_the_global_rng():
    """All the step's randomness (noise, LabelMix bits) depends on (seed, iteration, samples):
    two models that differ only in the global RNG state train identically, and the global
    RNG state is left as it was."""
    data = tiny_batch(5, 4)
    MessageHub.get_current_instance().update_info('iter', 3)
    states = []
    for seed in (1, 2):
        model, optim = _tiny_synth(seed=0)
        torch.manual_seed(seed)
        before = torch.get_rng_state()
        model.train_step(data, optim)
        assert torch.equal(torch.get_rng_state(), before)
        states.append(model.state_dict())
    assert all(torch.equal(v, states[1][k]) for k, v in states[0].items())

    random_states = []  # the default, 'random', draws from the global RNG
    for seed in (1, 2):
        model, optim = _tiny_synth('random', seed=0)
        seen = _record_noise(model)
        torch.manual_seed(seed)
        model.train_step(data, optim)
        # drawn from the global RNG, by the synthesizer (one draw for D's update, one for G's)
        assert len(seen) == 2 and all(z.shape == (4, model.generator.z_dim) for z in seen)
        random_states.append(model.state_dict()['generator.conv_img.weight'])
    assert not torch.equal(*random_states)


def test_per_sample_noise_needs_sample_indices_and_a_known_mode():
    model, optim = _tiny_synth()
    data = tiny_batch(5, 2)
    for ds in data['data_samples']:
        ds.set_metainfo(dict(sample_idx=-1))
    with pytest.raises(ValueError, match='sample_idx'):
        model.train_step(data, optim)
    with pytest.raises(ValueError, match="train_noise must be 'random' or 'per_sample'"):
        MODELS.build(dict(synth_cfg(5), train_noise='fixed'))


# ---------------------------------------------------------------- two real processes
PROBE = '''
"""Test probe: each rank dumps its initial and final synthesizer state (checkpoint keys)."""
import os

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import get_state_dict


def _state(runner):
    return {k: v.detach().cpu().clone() for k, v in get_state_dict(runner.model).items()}


@HOOKS.register_module(force=True)
class DistProbeHook(Hook):
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.saved_checkpoint = False

    def before_train(self, runner):
        self.seed = torch.initial_seed()
        self.init = _state(runner)

    def before_save_checkpoint(self, runner, checkpoint):
        self.saved_checkpoint = True

    def after_train(self, runner):
        rank, world = ((dist.get_rank(), dist.get_world_size()) if dist.is_initialized()
                       else (0, 1))
        inner = runner.model.module if hasattr(runner.model, 'module') else runner.model
        info = dict(init=self.init, state=_state(runner), seed=self.seed,
                    saved_checkpoint=self.saved_checkpoint,
                    wrapper=type(runner.model).__name__,
                    generator=type(inner.generator).__name__,
                    discriminator=type(inner.discriminator).__name__)
        torch.save(info, os.path.join(self.out_dir, f'rank{rank}_of{world}.pth'))
'''


def _rel_diff(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-12))


@pytest.mark.slow
def test_two_processes_train_as_one_process_with_the_global_batch(tiny_oasis_cfg, tmp_path,
                                                                   monkeypatch):
    """2 CPU processes x batch 2 (torchrun through tools/dist_train.sh, gloo) == 1 process x
    batch 4, after 2 iterations of a tiny OASIS: every rank ends with identical G, D and EMA
    (gradients all-reduced through the DDP wrappers, EMA from identical G, BatchNorm
    statistics and OASIS class weights synchronised), equal to the single process's."""
    probe_dir, dumps = tmp_path / 'probe', tmp_path / 'dumps'
    probe_dir.mkdir()
    dumps.mkdir()
    (probe_dir / 'catgen_dist_probe.py').write_text(PROBE)
    cfg = copy.deepcopy(tiny_oasis_cfg)
    cfg.merge_from_dict({
        'custom_imports': dict(imports=['catgen_dist_probe'], allow_failed_imports=False),
        'custom_hooks': [dict(type='DistProbeHook', out_dir=str(dumps)),
                         dict(type='SaveSubsetIdsHook')],
        # the same samples in every global batch: no shuffling, no random flip
        'train_dataloader.sampler.shuffle': False,
        'train_dataloader.dataset.pipeline': [dict(type='LoadSISImageFromFile'),
                                              dict(type='LoadSISAnnotations'),
                                              dict(type='PackSISInputs')],
        # noise of sample i at iteration t independent of the rank layout
        'model.train_noise': 'per_sample',
        # LabelMix on (official weight 10): one bit per class id from the step's RNG, shared
        # by the ranks under train_noise='per_sample', so the ranks' masks are the global one's
        'model.labelmix_weight': 10.0,
        # SGD: Adam turns float rounding in gradients that are zero in exact arithmetic
        # (conv biases before BatchNorm) into +-lr steps, which no tolerance can compare
        'optim_wrapper.generator.optimizer': dict(_delete_=True, type='SGD', lr=0.01),
        'optim_wrapper.discriminator.optimizer': dict(_delete_=True, type='SGD', lr=0.01),
        'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
        'test_cfg': None, 'test_dataloader': None, 'test_evaluator': None,
    })
    cfg_path = str(tmp_path / 'dist_tiny_oasis.py')
    cfg.dump(cfg_path)
    work2, work1 = tmp_path / 'work2', tmp_path / 'work1'

    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(free_port()), PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(probe_dir), ROOT, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.Popen(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_path, '2',
                             '--work-dir', str(work2)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        # meanwhile, the reference in this process: one process with the global batch of 4
        monkeypatch.syspath_prepend(str(probe_dir))
        train_tool.main([cfg_path, '--work-dir', str(work1), '--cfg-options',
                         'train_dataloader.batch_size=4'])
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-5000:]

    r0, r1 = (torch.load(dumps / f'rank{r}_of2.pth', weights_only=True) for r in (0, 1))
    one = torch.load(dumps / 'rank0_of1.pth', weights_only=True)
    assert r0['wrapper'] == 'SeparateDistributedDataParallel'
    assert r0['generator'] == r0['discriminator'] == 'MMDistributedDataParallel'
    assert one['wrapper'] == 'OASISSynthesizer'
    # randomness.diff_rank_seed defaults to True under torchrun: rank r is seeded seed + r
    assert (r0['seed'], r1['seed'], one['seed']) == (0, 1, 0)
    # rank 0 alone saved the checkpoint (and the subset ids); it holds rank 0's weights
    assert r0['saved_checkpoint'] and not r1['saved_checkpoint']
    assert sorted(p.name for p in work2.glob('*.pth')) == ['iter_2.pth']
    assert (work2 / 'train_ids.txt').is_file()
    ckpt = safe_load(work2 / 'iter_2.pth')['state_dict']
    assert ckpt.keys() == r0['state'].keys() == one['state'].keys()
    assert all(torch.equal(v, r0['state'][k]) for k, v in ckpt.items())

    state0, state1, ref = r0['state'], r1['state'], one['state']
    assert any(k.startswith('generator_ema.') for k in ref)
    assert any(k.endswith('param_free_norm.running_var') for k in ref)
    # identical on every rank, bit for bit: G, D, EMA, BatchNorm and spectral-norm buffers
    unequal = [k for k in state0 if not torch.equal(state0[k], state1[k])]
    assert not unequal, f'ranks differ in {unequal[:5]}'
    # equal to one process with the global batch, within float rounding
    for k, v in ref.items():
        if not v.is_floating_point():
            assert torch.equal(state0[k], v), k
            continue
        assert _rel_diff(state0[k], v) < 1e-5, (k, _rel_diff(state0[k], v))
    # ... and training moved every part far more than that
    for part in ('generator.', 'discriminator.', 'generator_ema.'):
        moved = [_rel_diff(v, one['init'][k]) for k, v in ref.items()
                 if k.startswith(part) and v.is_floating_point()]
        assert max(moved) > 1e-2, part
