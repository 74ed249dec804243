"""catgen's OASIS training iteration against the official boschresearch/OASIS code, side by side.

Point it at a local checkout of https://github.com/boschresearch/OASIS (catgen never ships,
copies or vendors it; it is imported at run time from ``--official-dir`` only)::

    git clone https://github.com/boschresearch/OASIS ~/src/OASIS
    python tools/benchmarks/oasis_vs_official.py --official-dir ~/src/OASIS \
        --setting 64 --setting 128 --out docs/results/oasis_vs_official.json

What it does, per setting (``--setting``: ``64`` = 6 blocks, generator width 16, 64x64, batch 8,
21 classes; ``128`` = 6 blocks, width 16, 128x128, batch 4, 12 classes; ``ade20k`` = the
official ADE20K model, width 64, 256x256, 151 classes, batch ``--batch-size``):

1. **Same weights.** The official ``OASIS_model`` is built with a fixed seed and its
   ``G`` / ``D`` / ``EMA`` state dicts are saved; catgen's ``OASISSynthesizer`` loads them through
   catgen's converter (``catgen/models/oasis_checkpoint.py``).
2. **Same outputs.** In one process both models get the same label maps, the same noise (the
   official generator draws it from the global RNG; catgen is given the same draw) and the same
   images: the generators' and EMA generators' eval-mode outputs and the discriminators' outputs
   must be bit-identical (``torch.equal``), else the tool stops with the largest difference.
3. **Timing.** Each implementation trains in its own process (so that peak memory is its own)
   on the same in-memory batches: the official iteration is ``train.py``'s loop body
   (``preprocess_input``, generator update, discriminator update with the N+1 loss and LabelMix,
   ``update_EMA``), catgen's is ``OASISSynthesizer.train_step`` (data preprocessor,
   discriminator update, generator update, EMA) as the Runner calls it, with catgen's
   entry-point defaults (``catgen.utils.allocator.tune_allocator``). Processes alternate
   (official, catgen, official, ...) for ``--rounds`` rounds; per round ``--warmup`` untimed then
   ``--iters`` timed iterations. Reported: the median s/iter over all timed iterations, peak
   memory (max RSS on CPU, max allocated on CUDA), minor page faults and system time per
   iteration, and the ratio catgen / official.

With ``--official-tuned`` the official code is also timed with the allocator settings catgen
applies, to show how much of the difference they explain. ``--amp`` (CUDA) trains catgen in
bf16 autocast (refused on CPU); ``--compile`` is refused for now (the EMA update does not
read compiled modules); the official code always runs as published (fp32). Results: JSON
(``--out``) with every round's numbers.
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

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

SETTINGS = {
    '64': dict(num_res_blocks=6, channels_G=16, crop_size=64, batch_size=8, semantic_nc=21),
    '128': dict(num_res_blocks=6, channels_G=16, crop_size=128, batch_size=4, semantic_nc=12),
    'ade20k': dict(num_res_blocks=6, channels_G=64, crop_size=256, batch_size=4, semantic_nc=151),
}
NUM_BATCHES = 4  # distinct in-memory batches, cycled
Z_DIM = 64


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--official-dir', required=True,
                   help='local checkout of github.com/boschresearch/OASIS (its models/ is '
                        'imported)')
    p.add_argument('--setting', action='append', choices=sorted(SETTINGS),
                   help='repeatable; default: 64 and 128')
    p.add_argument('--batch-size', type=int, help="override the setting's batch size")
    p.add_argument('--width', type=int, help="override the setting's generator width (channels_G)")
    p.add_argument('--num-classes', type=int,
                   help="override the setting's label channels (semantic_nc, don't care included)")
    p.add_argument('--rounds', type=int, default=3, help='alternating rounds per implementation')
    p.add_argument('--iters', type=int, default=6, help='timed iterations per round')
    p.add_argument('--warmup', type=int, default=2, help='untimed iterations per round first')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: the default)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--amp', action='store_true', help='catgen in bf16 autocast (CUDA)')
    p.add_argument('--compile', action='store_true', help='catgen networks under torch.compile')
    p.add_argument('--official-tuned', action='store_true',
                   help="also time the official code with catgen's allocator settings")
    p.add_argument('--out', default='docs/results/oasis_vs_official.json')
    # internal: one worker process
    p.add_argument('--worker', choices=['weights', 'check', 'official', 'catgen'],
                   help=argparse.SUPPRESS)
    p.add_argument('--setting-json', help=argparse.SUPPRESS)
    p.add_argument('--weights', help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- official side
def official_opt(s, device):
    """The ``opt`` namespace the official models read (config.py's defaults, training phase)."""
    return argparse.Namespace(
        phase='train', gpu_ids='0' if device.startswith('cuda') else '-1',
        num_res_blocks=s['num_res_blocks'], channels_G=s['channels_G'], crop_size=s['crop_size'],
        aspect_ratio=1.0, semantic_nc=s['semantic_nc'], batch_size=s['batch_size'],
        z_dim=Z_DIM, no_3dnoise=False, param_free_norm='syncbatch', spade_ks=3,
        no_spectral_norm=False, no_EMA=False, EMA_decay=0.9999, no_labelmix=False,
        lambda_labelmix=10.0, no_balancing_inloss=False, contain_dontcare_label=True,
        add_vgg_loss=False, lambda_vgg=10.0, lr_g=1e-4, lr_d=4e-4, beta1=0.0, beta2=0.999,
        continue_train=False, which_iter='latest', ckpt_iter='best', checkpoints_dir='',
        name='', freq_print=10**9, freq_fid=10**9, freq_save_ckpt=10**9, freq_save_latest=10**9)


def import_official(official_dir):
    """Import the official ``models.models``, ``models.losses`` and ``utils.utils``."""
    for rel in ('models/models.py', 'models/generator.py', 'models/discriminator.py',
                'models/losses.py', 'utils/utils.py'):
        if not osp.isfile(osp.join(official_dir, rel)):
            raise SystemExit(f'error: {osp.join(official_dir, rel)} not found: --official-dir '
                             'must be a checkout of github.com/boschresearch/OASIS')
    sys.path.insert(0, osp.abspath(official_dir))
    import models.losses as losses  # noqa: E402  (the official package, from --official-dir)
    import models.models as models
    import utils.utils as utils
    for mod in (models, losses, utils):
        if not osp.abspath(mod.__file__).startswith(osp.abspath(official_dir)):
            raise SystemExit(f'error: {mod.__name__} was imported from {mod.__file__}, not from '
                             f'{official_dir}: another package of that name shadows it')
    return models, losses, utils


def build_official(a, s, device):
    import torch
    models, losses, utils = import_official(a.official_dir)
    opt = official_opt(s, device)
    torch.manual_seed(0)
    model = models.OASIS_model(opt)
    model = models.put_on_multi_gpus(model, opt)
    return opt, model, models, losses, utils


# ----------------------------------------------------------------------------- catgen side
def build_catgen(s, weights, device):
    import torch

    from catgen.models.oasis_checkpoint import convert_official_oasis_state_dict
    from catgen.registry import MODELS
    from catgen.utils.setup_env import register_all_modules, setup_env
    setup_env()
    register_all_modules()
    nc = s['semantic_nc']
    model = MODELS.build(dict(
        type='OASISSynthesizer',
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=nc),
        generator=dict(type='OASISGenerator', num_classes=nc, z_dim=Z_DIM,
                       base_channels=s['channels_G'], crop_size=s['crop_size']),
        discriminator=dict(type='OASISDiscriminator', num_classes=nc),
        labelmix_weight=10.0, ema_momentum=1e-4))
    sd = torch.load(weights, map_location='cpu', weights_only=True)
    ckpt = convert_official_oasis_state_dict(generator=sd['G'], discriminator=sd['D'],
                                             ema=sd['EMA'], num_classes=nc, z_dim=Z_DIM,
                                             crop_size=s['crop_size'])
    missing, unexpected = model.load_state_dict(ckpt['state_dict'], strict=False)
    bad = [k for k in missing if not k.startswith('data_preprocessor')] + list(unexpected)
    if bad:
        raise SystemExit(f'error: converted weights do not fit catgen model: {bad[:10]}')
    return model.to(device)


def catgen_optim(model):
    from catgen.registry import OPTIM_WRAPPER_CONSTRUCTORS
    cfg = dict(generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
               discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999))))
    return OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='GANOptimWrapperConstructor',
                                                 optim_wrapper_cfg=cfg))(model)


# ----------------------------------------------------------------------------- data
def make_batches(s):
    """``NUM_BATCHES`` batches of (uint8 images [B, 3, H, W], int64 labels [B, H, W]): blocky
    label maps (random ids on an 8x8 grid, upsampled), random images."""
    import torch
    g = torch.Generator().manual_seed(1234)
    b, r, nc = s['batch_size'], s['crop_size'], s['semantic_nc']
    out = []
    for _ in range(NUM_BATCHES):
        img = torch.randint(0, 256, (b, 3, r, r), generator=g, dtype=torch.uint8)
        coarse = torch.randint(0, nc, (b, 1, 8, 8), generator=g).float()
        label = torch.nn.functional.interpolate(coarse, size=(r, r), mode='nearest')[:, 0].long()
        out.append((img, label))
    return out


def official_batch(img, label, device):
    """What the official data loader yields for these pixels: image in [-1, 1] (computed as
    catgen's preprocessor does, so both get the same floats), label [B, 1, H, W]."""
    return dict(image=((img.float() - 127.5) / 127.5).to(device), label=label[:, None].to(device))


def catgen_batch(img, label):
    from catgen.structures import SISDataSample
    return dict(inputs=dict(img=list(img), label=list(label)),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i))
                              for i in range(img.shape[0])])


# ----------------------------------------------------------------------------- workers
def worker_weights(a, s):
    """Build the official model (seed 0) and save its G / D / EMA state dicts."""
    import torch
    opt, model, models, _, _ = build_official(a, s, 'cpu')
    m = model.module
    # a fresh spectral norm's u, v are random (sigma near 0 in eval mode, outputs overflow):
    # a few training-mode forwards run its power iterations and fill the BN statistics
    img, label = make_batches(s)[0]
    _, seg = models.preprocess_input(opt, official_batch(img, label, 'cpu'))
    with torch.no_grad():
        for _ in range(3):
            m.netD(m.netG(seg))
            m.netEMA(seg)
    torch.save({k: getattr(m, 'net' + k).state_dict() for k in ('G', 'D', 'EMA')}, a.weights)
    return {}


def worker_check(a, s):
    """Both models from the same weights: eval-mode outputs must be bit-identical."""
    import torch
    opt, model, models, _, _ = build_official(a, s, 'cpu')
    sd = torch.load(a.weights, map_location='cpu', weights_only=True)
    for k in ('G', 'D', 'EMA'):
        getattr(model.module, 'net' + k).load_state_dict(sd[k])
    ours = build_catgen(s, a.weights, 'cpu')
    img, label = make_batches(s)[0]
    off = official_batch(img, label, 'cpu')
    image, seg = models.preprocess_input(opt, off)
    data = ours.data_preprocessor(catgen_batch(img, label), False)['inputs']
    if not torch.equal(data['seg'], seg) or not torch.equal(data['img'], image):
        raise SystemExit('error: the preprocessed inputs differ')
    for net in (model.module.netG, model.module.netD, model.module.netEMA):
        net.eval()  # not model.eval(): on CPU put_on_multi_gpus sets model.module = model
    ours.eval()
    report = {}
    with torch.no_grad():
        pairs = [('generator', model.module.netG, ours.generator),
                 ('generator_ema', model.module.netEMA, ours.generator_ema.module)]
        for name, theirs, mine in pairs:
            torch.manual_seed(7)
            ref = theirs(seg)
            torch.manual_seed(7)
            z = torch.randn(seg.shape[0], Z_DIM)
            got = mine(seg, z)
            report[name] = _compare(name, ref, got)
        report['discriminator'] = _compare('discriminator', model.module.netD(image),
                                           ours.discriminator(image, seg))
    return report


def _compare(name, ref, got):
    import torch
    if not torch.isfinite(ref).all():
        raise SystemExit(f'error: the official {name} gives non-finite outputs: nothing to '
                         'compare')
    if ref.shape != got.shape or not torch.equal(ref, got):
        diff = (ref - got).abs().max().item() if ref.shape == got.shape else 'shape'
        raise SystemExit(f'error: {name} outputs differ (max |diff| {diff}): not the same model')
    return dict(shape=list(ref.shape), bit_identical=True)


def worker_time(a, s):
    import torch
    device = a.device
    batches = make_batches(s)
    if a.worker == 'official':
        opt, model, models, losses, utils = build_official(a, s, device)
        sd = torch.load(a.weights, map_location='cpu', weights_only=True)
        for k in ('G', 'D', 'EMA'):
            getattr(model.module, 'net' + k).load_state_dict(sd[k])
        losses_computer = losses.losses_computer(opt)
        opt_g = torch.optim.Adam(model.module.netG.parameters(), lr=opt.lr_g,
                                 betas=(opt.beta1, opt.beta2))
        opt_d = torch.optim.Adam(model.module.netD.parameters(), lr=opt.lr_d,
                                 betas=(opt.beta1, opt.beta2))
        data = [official_batch(img, label, 'cpu') for img, label in batches]

        def step(i):  # train.py's loop body, logging and saving aside
            image, label = models.preprocess_input(opt, dict(data[i % NUM_BATCHES]))
            model.module.netG.zero_grad()
            loss_g, _ = model(image, label, 'losses_G', losses_computer)
            loss_g.mean().backward()
            opt_g.step()
            model.module.netD.zero_grad()
            loss_d, _ = model(image, label, 'losses_D', losses_computer)
            loss_d.mean().backward()
            opt_d.step()
            utils.update_EMA(model, i + 1, None, opt)
    else:
        model = build_catgen(s, a.weights, device)
        if a.compile:
            model.generator = torch.compile(model.generator)
            model.discriminator = torch.compile(model.discriminator)
        optim = catgen_optim(model)
        data = [catgen_batch(img, label) for img, label in batches]
        model.train()
        from mmengine.logging import MessageHub
        hub = MessageHub.get_current_instance()

        def step(i):
            hub.update_info('iter', i)
            with torch.autocast(device_type=device.split(':')[0], dtype=torch.bfloat16,
                                enabled=a.amp):
                model.train_step(data[i % NUM_BATCHES], optim)

    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(a.warmup + a.iters):
        if i == a.warmup:
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
        sync()
        t = time.perf_counter()
        step(i)
        sync()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith('cuda')
            else ru1.ru_maxrss / 1024)
    return dict(times=times, peak_memory_mb=peak,
                minor_faults_per_iter=(ru1.ru_minflt - ru0.ru_minflt) / a.iters,
                sys_s_per_iter=(ru1.ru_stime - ru0.ru_stime) / a.iters,
                user_s_per_iter=(ru1.ru_utime - ru0.ru_utime) / a.iters,
                threads=torch.get_num_threads())


def worker_main(a):
    s = json.loads(a.setting_json)
    if a.worker in ('official', 'catgen'):
        if a.worker == 'catgen' or os.environ.get('OASIS_VS_OFFICIAL_TUNED') == '1':
            from catgen.utils.allocator import tune_allocator
            tune_allocator()  # catgen's entry points do this (tools/train.py, ...)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    fn = dict(weights=worker_weights, check=worker_check).get(a.worker, worker_time)
    print('RESULT ' + json.dumps(fn(a, s)))


# ----------------------------------------------------------------------------- driver
def run_worker(a, kind, s, weights, env_extra=None):
    cmd = [sys.executable, osp.abspath(__file__), '--official-dir', a.official_dir,
           '--worker', kind, '--setting-json', json.dumps(s), '--weights', weights,
           '--iters', str(a.iters), '--warmup', str(a.warmup), '--threads', str(a.threads),
           '--device', a.device] + (['--amp'] if a.amp else []) + \
        (['--compile'] if a.compile else [])
    env = dict(os.environ, **(env_extra or {}))
    if kind == 'official' and env.get('OASIS_VS_OFFICIAL_TUNED') != '1':
        env['CATGEN_MALLOC_TUNING'] = '0'  # the official code as its train.py runs it
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [x for x in proc.stdout.splitlines() if x.startswith('RESULT ')]
    if proc.returncode or not lines:
        raise SystemExit(f'error: the {kind} worker failed (exit {proc.returncode}):\n'
                         f'{proc.stderr[-3000:]}')
    return json.loads(lines[-1][len('RESULT '):])


def summarise(rounds):
    times = [t for r in rounds for t in r['times']]
    return dict(s_per_iter=statistics.median(times),
                round_medians=[statistics.median(r['times']) for r in rounds],
                peak_memory_mb=max(r['peak_memory_mb'] for r in rounds),
                minor_faults_per_iter=statistics.median(r['minor_faults_per_iter']
                                                        for r in rounds),
                sys_s_per_iter=statistics.median(r['sys_s_per_iter'] for r in rounds),
                user_s_per_iter=statistics.median(r['user_s_per_iter'] for r in rounds),
                threads=rounds[0]['threads'], rounds=rounds)


def main(argv=None):
    a = parse_args(argv)
    if a.worker:
        worker_main(a)
        return
    if a.amp and not a.device.startswith('cuda'):
        raise SystemExit('error: --amp is bf16 autocast on CUDA; on CPU it would time a different '
                         'arithmetic than the official fp32 code. Drop --amp or use --device cuda.')
    if a.compile:
        raise SystemExit('error: --compile is not supported yet: the synthesizer\'s EMA update '
                         'reads the compiled module\'s "_orig_mod." keys (docs/benchmarks.md, "Faster '
                         'than the official code?"). Run without --compile.')
    import torch
    a.official_dir = osp.abspath(osp.expanduser(a.official_dir))
    import_check = [osp.join(a.official_dir, 'models', 'models.py')]
    if not all(osp.isfile(p) for p in import_check):
        raise SystemExit(f'error: {import_check[0]} not found: --official-dir must be a checkout '
                         'of github.com/boschresearch/OASIS (git clone '
                         'https://github.com/boschresearch/OASIS)')
    commit = subprocess.run(['git', '-C', a.official_dir, 'rev-parse', 'HEAD'],
                            capture_output=True, text=True).stdout.strip() or None
    kinds = ['official', 'catgen'] + (['official_tuned'] if a.official_tuned else [])
    report = dict(torch=torch.__version__, device=a.device, official_commit=commit,
                  cpu_count=os.cpu_count(), amp=a.amp, compile=a.compile, settings={})
    for name in a.setting or ['64', '128']:
        s = dict(SETTINGS[name])
        for key, value in (('batch_size', a.batch_size), ('channels_G', a.width),
                           ('semantic_nc', a.num_classes)):
            if value:
                s[key] = value
        print(f'setting {name}: {s}', flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            weights = osp.join(tmp, 'official_weights.pth')
            run_worker(a, 'weights', s, weights)
            check = run_worker(a, 'check', s, weights)
            print(f'  outputs bit-identical: {sorted(check)}', flush=True)
            rounds = {k: [] for k in kinds}
            for r in range(a.rounds):
                for k in kinds:
                    env = {'OASIS_VS_OFFICIAL_TUNED': '1'} if k == 'official_tuned' else None
                    res = run_worker(a, 'official' if k == 'official_tuned' else k, s, weights,
                                     env)
                    if k == 'official_tuned':
                        res['note'] = 'official code with catgen allocator settings'
                    rounds[k].append(res)
                    print(f'  round {r + 1}/{a.rounds} {k:15s} '
                          f'{statistics.median(res["times"]):.3f} s/iter', flush=True)
        entry = dict(setting=s, check=check, **{k: summarise(v) for k, v in rounds.items()})
        entry['ratio'] = entry['catgen']['s_per_iter'] / entry['official']['s_per_iter']
        if a.official_tuned:
            entry['ratio_vs_official_tuned'] = (entry['catgen']['s_per_iter']
                                                / entry['official_tuned']['s_per_iter'])
        report['settings'][name] = entry
        print(f'  catgen / official: {entry["ratio"]:.3f} '
              f'({entry["catgen"]["s_per_iter"]:.3f} vs {entry["official"]["s_per_iter"]:.3f} '
              's/iter)', flush=True)
    from catgen.utils.io import write_text_atomic
    os.makedirs(osp.dirname(osp.abspath(a.out)), exist_ok=True)
    write_text_atomic(a.out, json.dumps(report, indent=2) + '\n')
    print(f'written to {a.out}')


if __name__ == '__main__':
    main()
