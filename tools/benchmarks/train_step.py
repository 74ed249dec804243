"""Seconds per iteration and peak memory of a train step: MMEngine Runner vs a bare loop.

Both modes train the same modules (OASISSynthesizer: generator, discriminator, N+1 loss,
LabelMix, EMA) on the same in-memory random data through the same collate function and data
preprocessor; the bare loop calls ``model.train_step`` directly, so the difference is the
Runner's own overhead (hooks, logging, loop). Each mode runs in its own process so that peak
memory (max RSS on CPU, max allocated on CUDA) is measured separately.

    python tools/benchmarks/train_step.py --width 16 --resolution 64 --batch-size 4 \
        --iters 40 --out docs/results/train_step.json
    python tools/benchmarks/train_step.py --family stylegan2 --width 16 --resolution 64 \
        --batch-size 8 --iters 48 --out docs/results/train_step_stylegan2.json

``--family stylegan2``: StyleGAN2Synthesizer with lazy R1 (every 16) and path length (every 4)
included in the timed iterations; ``--width w`` caps the channels at ``8 w`` with
``channel_base = 64 w`` (w = 16: the SynthScenes StyleGAN2), ``--official-stylegan2`` builds
config-F instead (256 px: G 30.0M, D 28.9M parameters; a GPU job).
"""
import argparse
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--width', type=int, default=16, help='base channels (official OASIS: 64)')
    p.add_argument('--resolution', type=int, default=64)
    p.add_argument('--num-classes', type=int, default=21, help='label channels incl. dont care')
    p.add_argument('--num-blocks', type=int, default=4, help='generator residual blocks')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--iters', type=int, default=40, help='timed iterations')
    p.add_argument('--warmup', type=int, default=5, help='untimed iterations first')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    p.add_argument('--out', default='docs/results/train_step.json')
    p.add_argument('--mode', choices=['both', 'runner', 'bare'], default='both')
    p.add_argument('--family', choices=['oasis', 'spade', 'stylegan2'], default='oasis',
                   help='OASIS (generator blocks --num-blocks) or SPADE (its "normal" 5 '
                        'upsamplings, 2-scale PatchGAN; --width for both networks) or '
                        'StyleGAN2 (unconditional; see the module doc)')
    p.add_argument('--official-stylegan2', action='store_true',
                   help='StyleGAN2 config-F (channel multiplier 2, 512-d mapping of 8 layers)')
    p.add_argument('--allocator-ab', action='store_true',
                   help='instead of Runner vs bare loop: the bare loop without and with '
                        "catgen's allocator tuning (CATGEN_MALLOC_TUNING=0 / 1), alternated")
    p.add_argument('--repeats', type=int, default=2,
                   help='runs of each mode, alternated (bare, runner, bare, ...); medians '
                        'reported: '
                        'a shared VM drifts by 20%% between consecutive runs')
    return p.parse_args(argv)


def model_cfg(a):
    if a.family == 'stylegan2':
        arch = (dict(size=a.resolution, channel_multiplier=2) if a.official_stylegan2 else
                dict(size=a.resolution, channel_multiplier=1, max_channels=8 * a.width,
                     channel_base=64 * a.width))
        mapping = (dict(style_dim=512, n_mlp=8) if a.official_stylegan2 else
                   dict(style_dim=8 * a.width, n_mlp=4, fused_modconv=False))
        return dict(type='StyleGAN2Synthesizer',
                    data_preprocessor=dict(type='ImageDataPreprocessor'),
                    generator=dict(type='StyleGAN2Generator', **arch, **mapping),
                    discriminator=dict(type='StyleGAN2Discriminator', **arch))
    if a.family == 'spade':
        return dict(
            type='SPADESynthesizer',
            data_preprocessor=dict(type='SISDataPreprocessor', num_classes=a.num_classes),
            generator=dict(type='SPADEGenerator', num_classes=a.num_classes,
                           base_channels=a.width, crop_size=a.resolution),
            discriminator=dict(type='MultiScalePatchGANDiscriminator',
                               num_classes=a.num_classes, base_channels=a.width),
            ema_momentum=1e-4)
    mults = (16, 16, 16, 8, 4, 2, 1)[-(a.num_blocks + 1):]  # the official pattern, truncated
    return dict(
        type='OASISSynthesizer',
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=a.num_classes),
        generator=dict(type='OASISGenerator', num_classes=a.num_classes, z_dim=64,
                       base_channels=a.width, channel_multipliers=mults,
                       crop_size=a.resolution),
        discriminator=dict(type='OASISDiscriminator', num_classes=a.num_classes,
                           base_channels=a.width),
        labelmix_weight=10.0, ema_momentum=1e-4)


OPTIM = dict(constructor='GANOptimWrapperConstructor',
             generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
             discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999))))


def register_random_dataset():
    import numpy as np
    import torch
    from torch.utils.data import Dataset

    from catgen.registry import DATASETS
    from catgen.structures import SISDataSample

    @DATASETS.register_module(force=True)
    class RandomSISDataset(Dataset):
        """In-memory random (image, label) pairs, already packed: no I/O in the timing."""

        def __init__(self, num_classes, resolution, length=64):
            rng = np.random.default_rng(0)
            self.items = []
            for i in range(length):
                img = torch.from_numpy(rng.integers(0, 256, (3, resolution, resolution),
                                                    dtype=np.uint8))
                label = torch.from_numpy(rng.integers(1, num_classes, (resolution, resolution)))
                self.items.append(dict(inputs=dict(img=img, label=label),
                                       data_samples=SISDataSample(metainfo=dict(sample_idx=i))))
            self.metainfo = dict(classes=[str(i) for i in range(num_classes)])

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]


def peak_memory_mb(device):
    import torch
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_bare(a):
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from catgen.registry import DATASETS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    model = MODELS.build(model_cfg(a)).to(a.device)
    optim = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type=OPTIM['constructor'], optim_wrapper_cfg={
        k: v for k, v in OPTIM.items() if k != 'constructor'}))(model)
    ds = DATASETS.build(dict(type='RandomSISDataset', num_classes=a.num_classes,
                             resolution=a.resolution))
    loader = DataLoader(ds, batch_size=a.batch_size, shuffle=True, collate_fn=pseudo_collate,
                        drop_last=True)
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    times, it = [], 0
    model.train()
    while it < a.warmup + a.iters:
        for data in loader:
            if it >= a.warmup + a.iters:
                break
            # the iteration, as the Runner's loop sets it: the lazy regularisers (StyleGAN2's
            # R1 every 16, path length every 4) and EMA start read it
            hub.update_info('iter', it)
            sync(a.device)
            t = time.perf_counter()
            model.train_step(data, optim)
            sync(a.device)
            if it >= a.warmup:
                times.append(time.perf_counter() - t)
            it += 1
    return times


def run_runner(a):
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    times = []

    class TimeHook(Hook):
        priority = 'VERY_HIGH'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            sync(a.device)
            self.t = time.perf_counter()

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            # VERY_HIGH runs first after the step; the other hooks' time lands in the next
            # iteration's data time, which the wall-clock total below includes.
            sync(a.device)
            if runner.iter >= a.warmup:
                times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as work_dir:
        runner = Runner(
            model=model_cfg(a), work_dir=work_dir, default_scope='catgen',
            train_dataloader=dict(
                dataset=dict(type='RandomSISDataset', num_classes=a.num_classes,
                             resolution=a.resolution),
                sampler=dict(type='InfiniteSampler', shuffle=True), batch_size=a.batch_size,
                num_workers=0, collate_fn=dict(type='pseudo_collate')),
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=a.warmup + a.iters),
            optim_wrapper=OPTIM,
            default_hooks=dict(logger=dict(type='LoggerHook', interval=10),
                               checkpoint=dict(type='CheckpointHook', interval=10**9),
                               timer=dict(type='IterTimerHook')),
            custom_hooks=[TimeHook()], log_level='WARNING', cfg=dict())
        runner.model.to(a.device)
        sync(a.device)
        t_all = time.perf_counter()
        runner.train()
        sync(a.device)
        total = time.perf_counter() - t_all
    return times, total


def sync(device):
    if device.startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def child(a):
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # as catgen's entry points do (CATGEN_MALLOC_TUNING=0: off)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    from catgen.utils.setup_env import register_all_modules, setup_env
    setup_env()
    register_all_modules()
    register_random_dataset()
    torch.manual_seed(0)
    if a.mode == 'bare':
        t0 = time.perf_counter()
        times = run_bare(a)
        total = time.perf_counter() - t0
    else:
        times, total = run_runner(a)
    return dict(mode=a.mode, s_per_iter=sum(times) / len(times),
                s_per_iter_wall=total / (a.warmup + a.iters), iters=len(times),
                peak_memory_mb=peak_memory_mb(a.device))


def main(argv=None):
    a = parse_args(argv)
    if a.mode != 'both':
        print(json.dumps(child(a)))
        return
    args = [x for x in (argv if argv is not None else sys.argv[1:]) if x != '--allocator-ab']
    if a.allocator_ab:  # (name, mode, CATGEN_MALLOC_TUNING)
        variants = [('bare_untuned', 'bare', '0'), ('bare_tuned', 'bare', '1')]
    else:
        variants = [('bare', 'bare', '1'), ('runner', 'runner', '1')]
    runs = {name: [] for name, _, _ in variants}
    for _ in range(a.repeats):
        for name, mode, tuning in variants:
            cmd = [sys.executable, __file__, '--mode', mode] + args
            env = dict(os.environ, CATGEN_MALLOC_TUNING=tuning)
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    results = {}
    for mode, rs in runs.items():
        results[mode] = dict(
            s_per_iter=statistics.median(r['s_per_iter'] for r in rs),
            s_per_iter_wall=statistics.median(r['s_per_iter_wall'] for r in rs),
            peak_memory_mb=max(r['peak_memory_mb'] for r in rs), runs=rs)
    import torch
    report = dict(
        settings=dict(family=a.family, official_stylegan2=a.official_stylegan2, width=a.width,
                      resolution=a.resolution,
                      num_classes=a.num_classes, num_blocks=a.num_blocks,
                      batch_size=a.batch_size, iters=a.iters, warmup=a.warmup,
                      repeats=a.repeats, device=a.device,
                      threads=a.threads or torch.get_num_threads(), torch=torch.__version__),
        **results)
    if a.allocator_ab:
        ratio = results['bare_tuned']['s_per_iter'] / results['bare_untuned']['s_per_iter']
        report['tuned_over_untuned'] = ratio
        summary = f'allocator tuning: {ratio:.3f} x the untuned time per iteration'
    else:
        overhead = results['runner']['s_per_iter_wall'] / results['bare']['s_per_iter_wall'] - 1
        report['runner_overhead'] = overhead
        summary = f'Runner overhead: {100 * overhead:.1f}% (target <= 5%)'
    from catgen.utils.io import write_text_atomic
    write_text_atomic(a.out, json.dumps(report, indent=2) + '\n')
    print(json.dumps(report, indent=2))
    print(f'{summary}; written to {a.out}')


if __name__ == '__main__':
    main()
