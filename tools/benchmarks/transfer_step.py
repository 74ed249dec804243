"""Seconds per training iteration of a transfer strategy, for two catgen checkouts side by side.

Measures ``model.train_step`` (discriminator update, generator update with the strategy's loss
terms, EMA) of the SynthScenes transfer architecture (OASIS, width 16, 64x64, batch 8, 21 source
-> 12 target channels) from a seeded random source checkpoint, on in-memory random data. Each
measurement runs in its own process; the checkouts alternate (A, B, A, B, ...) so that drift of
a shared machine hits both, and medians are reported.

    python tools/benchmarks/transfer_step.py --strategy CDC --checkout old=/tmp/catgen-old \\
        --checkout new=. --out docs/results/cdc_step.json

A checkout is a directory holding the ``catgen`` package (e.g. a ``git worktree`` of an older
commit); it is put first on ``PYTHONPATH`` of its processes.
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--strategy', default='CDC', help='TRANSFER_STRATEGIES name')
    p.add_argument('--checkout', action='append', default=[],
                   help='NAME=DIR, repeatable (default: this checkout only)')
    p.add_argument('--iters', type=int, default=15, help='timed iterations per process')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--repeats', type=int, default=3, help='processes per checkout')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', default=None, help='JSON file for the results')
    p.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    return p.parse_args(argv)


def synth_cfg(n, transfer=None):
    """The SynthScenes transfer architecture with ``n`` label channels, explicit everywhere (so
    that older checkouts without the class-count filling build it too)."""
    return dict(
        type='OASISSynthesizer', ema_momentum=1e-2, transfer=transfer,
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n),
        generator=dict(type='OASISGenerator', num_classes=n, crop_size=64, base_channels=16,
                       z_dim=16, channel_multipliers=(8, 4, 2, 1, 1), spade_hidden=32,
                       init_gain=None),
        discriminator=dict(type='OASISDiscriminator', num_classes=n, base_channels=8,
                           channel_multipliers=(1, 2, 2, 4, 4, 8), init_gain=None))


def worker(args):
    """Time ``args.iters`` train steps in this process; print one JSON line."""
    import time

    import torch
    from mmengine.logging import MessageHub

    from catgen.engine.optimizers import GANOptimWrapperConstructor
    from catgen.registry import MODELS
    from catgen.structures import SISDataSample
    from catgen.utils.setup_env import setup_env
    setup_env()
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp()
    torch.manual_seed(1)
    source = MODELS.build(synth_cfg(21))
    with torch.no_grad():  # spectral-norm vectors of a discriminator that has run
        for _ in range(3):
            source.discriminator(torch.randn(2, 3, 64, 64))
    ckpt = osp.join(tmp, 'source.pth')
    torch.save({'meta': {}, 'state_dict': source.state_dict()}, ckpt)
    torch.manual_seed(0)
    transfer = dict(type=args.strategy, source_checkpoint=ckpt)
    if args.strategy in ('CDC', 'DCL'):
        # 21 -> 12 classes: the anchor needs an affinity (catgen >= issue 11), or the old copy
        try:
            from catgen.transfer import source_anchor  # noqa: F401
            transfer['anchor'] = 'reinit_copy'  # the cost is the same: one more 1x1 conv at most
        except ImportError:
            pass  # an older checkout: its only behaviour
    model = MODELS.build(synth_cfg(12, transfer))
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
        discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999)))))(model)
    g = torch.Generator().manual_seed(0)
    label = torch.randint(1, 12, (8, 64, 64), generator=g)
    img = torch.randint(0, 256, (8, 3, 64, 64), generator=g, dtype=torch.uint8)
    data = dict(inputs=dict(img=list(img), label=list(label)),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(8)])
    hub = MessageHub.get_current_instance()
    times = []
    for i in range(args.warmup + args.iters):
        hub.update_info('iter', i)
        t0 = time.perf_counter()
        model.train_step(data, optim)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps(dict(s_per_iter=statistics.median(times))))


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    checkouts = [c.split('=', 1) for c in args.checkout] or [['this', ROOT]]
    results = {name: [] for name, _ in checkouts}
    for r in range(args.repeats):
        for name, path in checkouts:
            env = dict(os.environ, PYTHONPATH=osp.abspath(path), OMP_NUM_THREADS=str(args.threads))
            out = subprocess.run(
                [sys.executable, osp.abspath(__file__), '--worker', '--strategy', args.strategy,
                 '--iters', str(args.iters), '--warmup', str(args.warmup), '--threads',
                 str(args.threads)], env=env, cwd=osp.abspath(path), capture_output=True,
                text=True)
            if out.returncode:
                raise RuntimeError(f'{name} ({path}) failed:\n{out.stderr[-3000:]}')
            value = json.loads(out.stdout.strip().splitlines()[-1])['s_per_iter']
            results[name].append(value)
            print(f'[{r + 1}/{args.repeats}] {name}: {value:.3f} s/iter', flush=True)
    summary = dict(strategy=args.strategy, iters=args.iters, threads=args.threads,
                   setting='OASIS width 16, 64x64, batch 8, 21 -> 12 channels',
                   runs={k: v for k, v in results.items()},
                   median_s_per_iter={k: statistics.median(v) for k, v in results.items()})
    print(json.dumps(summary, indent=2))
    if args.out:
        from catgen.utils.io import write_text_atomic
        write_text_atomic(args.out, json.dumps(summary, indent=2) + '\n')
    return summary


if __name__ == '__main__':
    main()
