"""catgen's StyleGAN2 against the official rosinality/stylegan2-pytorch code, number for number.

Point it at a local checkout of https://github.com/rosinality/stylegan2-pytorch (catgen never
ships, copies or vendors it; its ``model.py`` is imported at run time from ``--official-dir``
only)::

    git clone https://github.com/rosinality/stylegan2-pytorch ~/src/stylegan2-pytorch
    python tools/benchmarks/stylegan2_vs_official.py --official-dir ~/src/stylegan2-pytorch

The official ``op`` package compiles CUDA extensions when it is imported
(``torch.utils.cpp_extension.load``). The tool replaces that function by a stub while it imports
``model.py`` and runs everything on the CPU, where the official code takes its pure-PyTorch
paths (``upfirdn2d_native``, ``F.leaky_relu``, ``F.conv2d``); a stubbed extension raises if it
is ever called, so a finished run has used the fallbacks only.

What it does, per ``--size`` (32 by default: the official channel table is 512 up to 32 px, so
the networks have their full width; 64 adds the ``256 * channel_multiplier`` level):

1. **Same weights.** The official ``Generator(size, style_dim, n_mlp, channel_multiplier)`` and
   ``Discriminator(size, channel_multiplier)`` are built with ``--seed``; every parameter gets a
   seeded perturbation (0.1 N(0, 1)), so that the zero-initialised noise strengths and biases
   take part. The official blur ``kernel`` buffers are checked against catgen's (which catgen
   does not save) and dropped; the rest loads strictly into catgen's ``StyleGAN2Generator`` /
   ``StyleGAN2Discriminator``, built with the channel table read off the official weights.
2. **Same outputs, bit for bit** (``--rtol``, 0 by default). The mapping network (one and
   per-layer latents), ``mean_latent``, the generator with a given noise list (the official
   ``noise=``), with its stored noise (``randomize_noise=False``; catgen ``noise_mode='const'``)
   and with fresh noise from the same RNG state, truncation with ``truncation_latent``, w input
   (``input_is_latent``) as one and as per-layer latents, style mixing of two w's
   (``inject_index``, with and without truncation, and the returned latents) against catgen's
   per-layer w from ``mix_latents(w1, w2, crossover=inject_index)``; the discriminator for each
   ``--d-batch-size`` (the minibatch standard deviation groups ``min(B, 4)`` samples).
3. **Same gradients** (``--grad-rtol``: max |diff| of every tensor relative to its largest
   official entry). One generator backward (a fixed linear loss of the image) with respect to
   z, the noise maps and every parameter, without and with style mixing (catgen mapping each z,
   then mixing the w's, as the official code does); one discriminator backward (non-saturating
   loss on real images) and one R1 penalty backward (a double backward) with respect to the
   images and every parameter.
4. **Up to float rounding**, where catgen's op order differs by design: style mixing of two
   z's (catgen's ``StyleGAN2Synthesizer`` training path maps the per-layer z of
   ``mix_latents(z1, z2)``, B x n_latent rows, the official code each z, B rows; ``F.linear``
   rounds differently for another number of rows): outputs, returned latents and gradients; and
   catgen's unfused modulated convolution (``fused_modconv=False``, which catgen's CPU configs
   use) against the official fused one. In float32 outputs must agree to ``--rounding-rtol``
   (1e-4 of max |official|) and gradients to ``--rounding-grad-rtol`` in relative L2 error of
   all of them together (1e-2: a leaky ReLU input that rounding moves across 0 changes that
   element's gradient by a finite amount, so these gradients differ by far more than the
   outputs do). The same comparisons are then repeated on float64 copies of both models
   (``--float64-rtol``, 1e-9 of max |official|, every tensor; ``--no-float64`` skips them),
   where the rounding and so the kinks vanish: the maths is the same.

Also recorded, not checked: what differs by design (the official code silently ignores
``truncation > 1``, catgen refuses it; the official code cannot map per-layer z's, only
per-layer w's).

Results: a table on stdout and JSON (``--out``, written atomically) with the largest absolute
difference of every output and gradient; nothing is written, and the exit status is non-zero,
when a check fails.
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

OFFICIAL = 'github.com/rosinality/stylegan2-pytorch'
REQUIRED_FILES = ('model.py', 'op/__init__.py')
PERTURBATION = 0.1
MEAN_LATENT_SAMPLES = 512
PSI = 0.7
MAX_LISTED = 12
EXACT = 'bit-identical'
#: why some comparisons can only agree up to float rounding
MAPPING_ROWS = ('float rounding: catgen maps the per-layer z of mix_latents (B x n_latent rows), '
                'the official code maps each of the two z (B rows); F.linear rounds a row '
                'differently for another number of rows')
UNFUSED = ('float rounding: fused_modconv=False modulates the activations instead of the '
           'weights (another op order)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--official-dir', required=True,
                   help=f'local checkout of {OFFICIAL} (its model.py is imported)')
    p.add_argument('--size', type=int, action='append',
                   help='image size, a power of 2 >= 8 (repeatable; default: 32)')
    p.add_argument('--style-dim', type=int, default=64, help='z / w size (default 64)')
    p.add_argument('--n-mlp', type=int, default=2, help='mapping layers (default 2)')
    p.add_argument('--channel-multiplier', type=int, default=1,
                   help='the official channel_multiplier (default 1)')
    p.add_argument('--batch-size', type=int, default=2, help='generator batch (default 2)')
    p.add_argument('--d-batch-size', type=int, action='append',
                   help='discriminator batch (repeatable; default: 4 and 8); the backward checks '
                        'use the first')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--rtol', type=float, default=0.0,
                   help='outputs: allowed max |diff| relative to max |official| (default 0: '
                        'bit-identical)')
    p.add_argument('--grad-rtol', type=float, default=1e-5,
                   help='gradients: allowed max |diff| of each tensor relative to its max '
                        '|official| (default 1e-5)')
    p.add_argument('--rounding-rtol', type=float, default=1e-4,
                   help='outputs that differ by design in op order (z-space style mixing, '
                        "catgen's fused_modconv=False): max |diff| relative (default 1e-4)")
    p.add_argument('--rounding-grad-rtol', type=float, default=1e-2,
                   help='their gradients: relative L2 error of all gradients together '
                        '(default 1e-2)')
    p.add_argument('--float64-rtol', type=float, default=1e-9,
                   help='the same comparisons in float64, outputs and every gradient tensor: '
                        'max |diff| relative (default 1e-9)')
    p.add_argument('--no-float64', dest='float64', action='store_false',
                   help='skip the float64 repetition')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1; 0: leave)')
    p.add_argument('--out', default='docs/results/stylegan2_vs_official.json')
    a = p.parse_args(argv)
    a.size = a.size or [32]
    a.d_batch_size = a.d_batch_size or [4, 8]
    return a


# ----------------------------------------------------------------------------- official code
def check_official_dir(path):
    """The absolute checkout path; exit naming the problem unless it has the official layout."""
    path = osp.abspath(osp.expanduser(path))
    hint = f'--official-dir must be a checkout of {OFFICIAL} (git clone https://{OFFICIAL})'
    if not osp.isdir(path):
        raise SystemExit(f'error: {path} is not a directory: {hint}')
    for rel in REQUIRED_FILES:
        if not osp.isfile(osp.join(path, rel)):
            raise SystemExit(f'error: {osp.join(path, rel)} not found: {hint}')
    return path


class _StubExtension:
    """What the patched ``torch.utils.cpp_extension.load`` returns: any use raises."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        raise RuntimeError(f'the official code called its CUDA extension {self._name!r} '
                           f'({attr}); this tool runs its CPU fallback paths only')


def import_official(official_dir):
    """Import the official ``model`` module from ``official_dir`` with the CUDA extension
    builds stubbed out. Returns (module, names of the stubbed extensions)."""
    import importlib

    import torch.utils.cpp_extension as cpp_extension
    stubbed = []

    def fake_load(name, *args, **kwargs):
        stubbed.append(name)
        return _StubExtension(name)

    for name in [m for m in sys.modules if m == 'model' or m == 'op' or m.startswith('op.')]:
        del sys.modules[name]  # generic names: never reuse another package's
    saved = cpp_extension.load
    cpp_extension.load = fake_load
    sys.path.insert(0, official_dir)
    try:
        model = importlib.import_module('model')
    except Exception as e:  # noqa: BLE001  (report whatever the official import raised)
        raise SystemExit(f'error: importing {osp.join(official_dir, "model.py")} failed: '
                         f'{type(e).__name__}: {e}')
    finally:
        cpp_extension.load = saved
        sys.path.remove(official_dir)
    for mod in (model, sys.modules.get('op')):
        where = getattr(mod, '__file__', None)
        if mod is not None and not osp.abspath(where or '').startswith(official_dir + os.sep):
            raise SystemExit(f'error: {mod.__name__} was imported from {where}, not from '
                             f'{official_dir}: another module of that name shadows it')
    for cls in ('Generator', 'Discriminator'):
        if not isinstance(getattr(model, cls, None), type):
            raise SystemExit(f'error: {model.__file__} defines no {cls} class: --official-dir '
                             f'must be a checkout of {OFFICIAL}')
    return model, stubbed


def official_commit(official_dir):
    try:
        out = subprocess.run(['git', '-C', official_dir, 'rev-parse', 'HEAD'],
                             capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# ----------------------------------------------------------------------------- weights
def generator_widths(sd):
    """{resolution: channels} of a rosinality generator state dict."""
    widths = {4: int(sd['input.input'].shape[1])}
    j = 0
    while f'convs.{2 * j}.conv.weight' in sd:
        widths[2 ** (j + 3)] = int(sd[f'convs.{2 * j}.conv.weight'].shape[1])
        j += 1
    return widths


def catgen_channel_config(widths, size, channel_multiplier):
    """(max_channels, channel_base) that give catgen the channel table ``widths``."""
    from catgen.models.generators.stylegan2_generator import stylegan2_channels
    top = max(widths.values())
    below = sorted(r for r, c in widths.items() if c < top)
    candidates = [(512, 16384)]
    if below:
        r = below[0]
        base = widths[r] * r // channel_multiplier
        candidates += [(top, base), (top, base + 1)]
    else:
        candidates.append((top, top * size))
    for cap, base in candidates:
        if stylegan2_channels(size, channel_multiplier, cap, base) == widths:
            return cap, base
    raise SystemExit(f'error: the official channel table {widths} is no catgen table '
                     'min(max_channels, channel_base * channel_multiplier // res)')


def _listing(keys):
    keys = sorted(keys)
    more = f' ... and {len(keys) - MAX_LISTED} more' if len(keys) > MAX_LISTED else ''
    return ', '.join(keys[:MAX_LISTED]) + more


def load_official_weights(module, sd, what):
    """Check the official blur kernels against catgen's, drop them, load the rest strictly.
    Returns the number of kernels checked."""
    import torch
    buffers = dict(module.named_buffers())
    kernels = {k: v for k, v in sd.items() if k.endswith('.kernel')}
    bad = []
    for k, v in kernels.items():
        mine = buffers.get(k)
        if mine is None:
            bad.append(f'{k} (catgen has no such buffer)')
        elif mine.shape != v.shape or not torch.equal(mine, v.to(mine)):
            bad.append(f'{k} (official {v.tolist()}, catgen {mine.tolist()})')
    if bad:
        raise SystemExit(f"error: the official {what}'s blur kernels differ from catgen's: "
                         + '; '.join(bad[:MAX_LISTED]))
    rest = {k: v for k, v in sd.items() if not k.endswith('.kernel')}
    own = module.state_dict()
    missing, unexpected = set(own) - set(rest), set(rest) - set(own)
    shapes = [f'{k} {tuple(rest[k].shape)} vs {tuple(own[k].shape)}' for k in sorted(own)
              if k in rest and rest[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise SystemExit(f'error: the official {what} weights do not fit catgen: missing '
                         f'[{_listing(missing)}], unexpected [{_listing(unexpected)}], shapes '
                         f'[{"; ".join(shapes[:MAX_LISTED])}]')
    module.load_state_dict(rest, strict=True)
    return len(kernels)


def perturb(modules, seed):
    """Add 0.1 N(0, 1) to every parameter (the zero-initialised ones take part then)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in modules:
            for p in m.parameters():
                p.add_(PERTURBATION * torch.randn(p.shape, generator=gen))


# ----------------------------------------------------------------------------- comparisons
def _refusal(fn):
    """'raises <Error>: <message>' when ``fn()`` raises, else 'runs'."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - recorded as it is
        return f'raises {type(e).__name__}: {str(e)[:120]}'
    return 'runs'


def _max_abs(t):
    return float(t.abs().max()) if t.numel() else 0.0


def compare_output(name, ref, got, rtol, description, expect=EXACT):
    """One output: shapes, max |diff|, bit-identity; passes if max |diff| <= rtol max |ref|."""
    import torch
    entry = dict(kind='output', description=description, expect=expect, shape=list(ref.shape),
                 max_abs_ref=_max_abs(ref), rtol=rtol)
    if not torch.isfinite(ref).all():
        raise SystemExit(f'error: the official {name} is not finite: nothing to compare')
    if ref.shape != got.shape:
        entry.update(max_abs_diff=None, rel=None, bit_identical=False, passed=False,
                     problem=f'shape {tuple(got.shape)} vs official {tuple(ref.shape)}')
        return entry
    diff = _max_abs(ref - got) if torch.isfinite(got).all() else float('inf')
    rel = diff / entry['max_abs_ref'] if entry['max_abs_ref'] else (0.0 if not diff else diff)
    entry.update(max_abs_diff=diff, rel=rel, bit_identical=bool(torch.equal(ref, got)),
                 passed=diff <= rtol * entry['max_abs_ref'])
    return entry


def compare_gradients(ref, got, rtol, description, expect=EXACT, metric='max'):
    """Named gradient tensors (None: no gradient). Per tensor: max |diff| relative to max
    |official| (``rel``) and the relative L2 error (``rel_l2``); overall: the relative L2 error
    of all tensors together (``rel_l2_total``). ``metric`` 'max': every tensor's ``rel`` must be
    <= ``rtol``; 'l2': ``rel_l2_total`` must (for backward passes whose forward differs by
    rounding: a leaky ReLU input that rounding moves across 0 changes the gradient of that one
    element by a finite amount, which shows in a scalar such as a noise strength). Also the
    largest differences and the tensors that differ."""
    import torch
    entry = dict(kind='gradients', description=description, expect=expect, rtol=rtol,
                 metric='rel' if metric == 'max' else 'rel_l2_total')
    if set(ref) != set(got):
        entry.update(passed=False, bit_identical=False, max_abs_diff=None, rel=None,
                     problem=f'different tensors: {_listing(set(ref) ^ set(got))}')
        return entry
    rows, problems = {}, []
    for k in ref:
        r, g = ref[k], got[k]
        if r is None or g is None:
            if (r is None) != (g is None):
                problems.append(f'{k}: gradient only on one side')
            continue
        if r.shape != g.shape:
            problems.append(f'{k}: shape {tuple(g.shape)} vs official {tuple(r.shape)}')
            continue
        if not torch.isfinite(r).all():
            raise SystemExit(f'error: the official gradient {k} is not finite')
        d = (r - g) if torch.isfinite(g).all() else torch.full_like(r, float('inf'))
        scale, diff = _max_abs(r), _max_abs(d)
        norm, dnorm = float(r.norm()), float(d.norm())
        rows[k] = dict(max_abs_diff=diff, max_abs_ref=scale,
                       rel=diff / scale if scale else (0.0 if not diff else float('inf')),
                       rel_l2=dnorm / norm if norm else (0.0 if not dnorm else float('inf')))
    key = 'rel' if metric == 'max' else 'rel_l2'
    differing = {k: v for k, v in rows.items() if v['max_abs_diff'] != 0}
    worst = max(rows, key=lambda k: rows[k][key]) if rows else None
    total_ref = sum(float(ref[k].double().pow(2).sum()) for k in rows) ** 0.5
    total_diff = sum(float((ref[k].double() - got[k].double()).pow(2).sum())
                     for k in rows) ** 0.5
    total = total_diff / total_ref if total_ref else (0.0 if not total_diff else float('inf'))
    entry.update(
        n_tensors=len(rows), n_bit_identical=len(rows) - len(differing),
        bit_identical=not differing and not problems,
        max_abs_diff=max((v['max_abs_diff'] for v in rows.values()), default=0.0),
        rel=max((v['rel'] for v in rows.values()), default=0.0),
        rel_l2=max((v['rel_l2'] for v in rows.values()), default=0.0), rel_l2_total=total,
        worst=worst if differing else None,
        passed=not problems and (all(v['rel'] <= rtol for v in rows.values())
                                 if metric == 'max' else total <= rtol),
        differing={k: v for k, v in sorted(differing.items(), key=lambda kv: -kv[1][key])})
    if problems:
        entry['problem'] = '; '.join(problems)
    return entry


def grads_of(module, extra):
    """{name: grad} for ``extra`` (inputs) and every named parameter of ``module``."""
    out = {k: (None if t.grad is None else t.grad.detach().clone()) for k, t in extra.items()}
    out.update({k: (None if p.grad is None else p.grad.detach().clone())
                for k, p in module.named_parameters()})
    return out


# ----------------------------------------------------------------------------- one size
def run_size(official, a, size):
    import torch

    from catgen.models.discriminators.stylegan2_discriminator import StyleGAN2Discriminator
    from catgen.models.generators.stylegan2_generator import StyleGAN2Generator, mix_latents

    # ---- weights
    torch.manual_seed(a.seed)
    og = official.Generator(size, a.style_dim, a.n_mlp, channel_multiplier=a.channel_multiplier)
    od = official.Discriminator(size, channel_multiplier=a.channel_multiplier)
    perturb((og, od), a.seed + 1)
    og.eval()
    od.eval()
    gsd = og.state_dict()
    widths = generator_widths(gsd)
    cap, base = catgen_channel_config(widths, size, a.channel_multiplier)
    arch = dict(channel_multiplier=a.channel_multiplier, max_channels=cap, channel_base=base)
    cg = StyleGAN2Generator(size, a.style_dim, a.n_mlp, noise_mode='const', **arch).eval()
    cd = StyleGAN2Discriminator(size, **arch).eval()
    n_kernels = load_official_weights(cg, gsd, 'generator')
    n_kernels += load_official_weights(cd, od.state_dict(), 'discriminator')
    cgu = StyleGAN2Generator(size, a.style_dim, a.n_mlp, noise_mode='const', fused_modconv=False,
                             **arch).eval()
    cgu.load_state_dict(cg.state_dict())
    L, D, B = cg.n_latent, a.style_dim, a.batch_size
    if (og.n_latent, og.num_layers) != (L, cg.num_layers):
        raise SystemExit(f'error: the official generator has n_latent {og.n_latent}, num_layers '
                         f'{og.num_layers}; catgen {L}, {cg.num_layers}')

    # ---- inputs
    gen = torch.Generator().manual_seed(a.seed + 2)
    z1, z2 = torch.randn(B, D, generator=gen), torch.randn(B, D, generator=gen)
    z_layers = torch.randn(B, L, D, generator=gen)
    noise = [torch.randn(B, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), generator=gen)
             for i in range(cg.num_layers)]
    imgs = {b: torch.randn(b, 3, size, size, generator=gen) for b in a.d_batch_size}
    loss_weight = torch.randn(B, 3, size, size, generator=gen)
    mid = L // 2
    checks = {}

    def out(name, ref, got, description, expect=EXACT, rtol=None):
        rtol = a.rtol if rtol is None else rtol
        checks[name] = compare_output(name, ref, got, rtol, description, expect)
        print(f'  {name}', flush=True)

    def first(x):
        return x[0] if isinstance(x, (tuple, list)) else x

    with torch.no_grad():
        # mapping network and mean latent
        out('mapping', og.style(z1), cg.get_latent(z1), 'w = style(z), z [B, D]')
        w_layers = og.style(z_layers.reshape(-1, D)).view(B, L, D)
        out('mapping_per_layer', w_layers, cg.get_latent(z_layers),
            "per-layer z [B, n_latent, D] (official: style() of the flattened z's)")
        torch.manual_seed(a.seed + 3)
        w_avg = og.mean_latent(MEAN_LATENT_SAMPLES)
        out('mean_latent', w_avg, cg.mean_latent(MEAN_LATENT_SAMPLES, seed=a.seed + 3),
            f'mean_latent({MEAN_LATENT_SAMPLES}): global RNG seeded s vs seed=s')
        w1, w2 = og.style(z1), og.style(z2)

        # generator
        out('generator', first(og([z1], noise=noise, randomize_noise=False)),
            cg(z=z1, noise=noise), 'fixed z, noise list')
        out('generator_stored_noise', first(og([z1], randomize_noise=False)), cg(z=z1),
            "randomize_noise=False vs noise_mode='const' (the noises.noise_i buffers)")
        torch.manual_seed(a.seed + 4)
        ref = first(og([z1]))
        cg.noise_mode = 'random'
        torch.manual_seed(a.seed + 4)
        got = cg(z=z1)
        cg.noise_mode = 'const'
        out('generator_random_noise', ref, got,
            "randomize_noise=True vs noise_mode='random', the same global RNG state")
        out('truncation', first(og([z1], truncation=PSI, truncation_latent=w_avg, noise=noise)),
            cg(z=z1, truncation=PSI, truncation_latent=w_avg, noise=noise),
            f'truncation={PSI}, truncation_latent=mean_latent')
        out('input_is_latent', first(og([w1], input_is_latent=True, noise=noise)),
            cg(z=w1, input_is_latent=True, noise=noise), 'w [B, D] input')
        out('per_layer_latents', first(og([w_layers], input_is_latent=True, noise=noise)),
            cg(z=w_layers, input_is_latent=True, noise=noise), 'per-layer w [B, n_latent, D]')
        for k in sorted({1, mid, L - 1}):
            out(f'style_mixing_w_{k}',
                first(og([w1, w2], inject_index=k, input_is_latent=True, noise=noise)),
                cg(z=mix_latents(w1, w2, L, crossover=k), input_is_latent=True, noise=noise),
                f'w-space mixing: [w1, w2], inject_index={k} vs mix_latents(w1, w2, '
                f'crossover={k})')
        ref_img, ref_lat = og([w1, w2], inject_index=mid, input_is_latent=True, truncation=PSI,
                              truncation_latent=w_avg, noise=noise, return_latents=True)
        got_img, got_lat = cg(z=mix_latents(w1, w2, L, crossover=mid), input_is_latent=True,
                              truncation=PSI, truncation_latent=w_avg, noise=noise,
                              return_latents=True)
        out('mixing_truncation_w', ref_img, got_img, f'w-space mixing ({mid}) and truncation')
        out('returned_latents_w', ref_lat, got_lat.contiguous(),
            'return_latents=True after w-space mixing and truncation')
        # discriminator
        for b, img in imgs.items():
            out(f'discriminator_batch{b}', od(img), cd(img),
                f'D(img), batch {b} (stddev groups of {min(b, 4)})')

        # differences by design (recorded, not checked)
        base_img = first(og([z1], noise=noise))
        design = dict(
            truncation_above_1=dict(
                description='psi = 1.5: the official code truncates only when psi < 1 '
                            '(silently ignores psi > 1); catgen refuses psi > 1',
                official_equals_psi_1=bool(torch.equal(
                    first(og([z1], truncation=1.5, truncation_latent=w_avg, noise=noise)),
                    base_img)),
                catgen=_refusal(lambda: cg(z=z1, truncation=1.5, truncation_latent=w_avg,
                                           noise=noise))))
        try:
            og([z_layers], noise=noise)
            official_layers = 'runs'
        except Exception as e:  # noqa: BLE001
            official_layers = f'raises {type(e).__name__}: {str(e)[:200]}'
        design['per_layer_z'] = dict(
            description='per-layer z [B, n_latent, D] without input_is_latent: catgen maps '
                        'every z; the official PixelNorm/EqualLinear expect [B, D]',
            official=official_layers)

    # ---- gradients
    def g_backward(G, how, t):
        G.zero_grad(set_to_none=True)
        x1, x2 = t['z1'].clone().requires_grad_(True), t['z2'].clone().requires_grad_(True)
        ns = [n.clone().requires_grad_(True) for n in t['noise']]
        extra = {f'noise.{i}': n for i, n in enumerate(ns)}
        if how == 'official':
            img = first(G([x1], noise=ns))
        elif how == 'official_mixing':
            img = first(G([x1, x2], inject_index=mid, noise=ns))
        elif how == 'mixing_w':  # catgen: map each z, mix the w's (the official op order)
            w = mix_latents(G.get_latent(x1), G.get_latent(x2), L, crossover=mid)
            img = G(z=w, input_is_latent=True, noise=ns)
        elif how == 'mixing_z':  # catgen's training path: per-layer z
            img = G(z=mix_latents(x1, x2, L, crossover=mid), noise=ns)
        else:
            img = G(z=x1, noise=ns)
        (img * t['loss_weight']).sum().backward()
        extra.update(z1=x1, z2=x2) if 'mixing' in how else extra.update(z=x1)
        return grads_of(G, extra)

    def d_backward(Dn, img):
        Dn.zero_grad(set_to_none=True)
        x = img.clone().requires_grad_(True)
        torch.nn.functional.softplus(-Dn(x)).mean().backward()
        return grads_of(Dn, dict(img=x))

    def d_r1(Dn, img):
        Dn.zero_grad(set_to_none=True)
        x = img.clone().requires_grad_(True)
        g, = torch.autograd.grad(Dn(x).sum(), x, create_graph=True)
        g.pow(2).flatten(1).sum(1).mean().backward()
        grads = grads_of(Dn, {})
        grads['d_logit/d_img'] = g.detach()
        return grads

    print('  gradients', flush=True)
    t32 = dict(z1=z1, z2=z2, noise=noise, loss_weight=loss_weight, w_avg=w_avg)
    loss = 'sum(G(...) * fixed weights)'
    checks['generator_backward'] = compare_gradients(
        g_backward(og, 'official', t32), g_backward(cg, 'plain', t32), a.grad_rtol,
        f'{loss}, z [B, D], noise list: d/dz, d/dnoise, d/dparams')
    checks['generator_backward_mixing_w'] = compare_gradients(
        g_backward(og, 'official_mixing', t32), g_backward(cg, 'mixing_w', t32), a.grad_rtol,
        f'{loss}, [z1, z2] inject_index={mid} vs catgen mix_latents of get_latent(z1), '
        'get_latent(z2) with input_is_latent')
    b0 = a.d_batch_size[0]
    checks['discriminator_backward'] = compare_gradients(
        d_backward(od, imgs[b0]), d_backward(cd, imgs[b0]), a.grad_rtol,
        f'mean(softplus(-D(img))), batch {b0}: d/dimg, d/dparams')
    checks['discriminator_r1'] = compare_gradients(
        d_r1(od, imgs[b0]), d_r1(cd, imgs[b0]), a.grad_rtol,
        f'R1 = mean |dD/dimg|^2, batch {b0} (double backward): dD/dimg, dR1/dparams')

    # ---- where catgen's op order differs by design: float32, then float64 copies
    def rounding_checks(dtype):
        wide = dtype == torch.float64
        suffix, ks = ('_float64', [mid]) if wide else ('', sorted({1, mid, L - 1}))
        out_rtol, grad_rtol = ((a.float64_rtol, a.float64_rtol) if wide else
                               (a.rounding_rtol, a.rounding_grad_rtol))
        metric = 'max' if wide else 'l2'
        Go, Gc, Gu = ((copy.deepcopy(m).double() for m in (og, cg, cgu)) if wide else
                      (og, cg, cgu))
        t = {k: ([n.to(dtype) for n in v] if k == 'noise' else v.to(dtype))
             for k, v in t32.items()}
        mapping, unfused = MAPPING_ROWS, UNFUSED
        if wide:
            mapping, unfused = (e.replace('float rounding:', 'float64:')
                                for e in (MAPPING_ROWS, UNFUSED))
        with torch.no_grad():
            for k in ks:
                out(f'style_mixing_z_{k}{suffix}',
                    first(Go([t['z1'], t['z2']], inject_index=k, noise=t['noise'])),
                    Gc(z=mix_latents(t['z1'], t['z2'], L, crossover=k), noise=t['noise']),
                    f'[z1, z2], inject_index={k} vs per-layer z mix_latents(z1, z2, '
                    f'crossover={k})', mapping, out_rtol)
            ref_img, ref_lat = Go([t['z1'], t['z2']], inject_index=mid, truncation=PSI,
                                  truncation_latent=t['w_avg'], noise=t['noise'],
                                  return_latents=True)
            got_img, got_lat = Gc(z=mix_latents(t['z1'], t['z2'], L, crossover=mid),
                                  truncation=PSI, truncation_latent=t['w_avg'], noise=t['noise'],
                                  return_latents=True)
            out(f'mixing_truncation_z{suffix}', ref_img, got_img,
                f'z-space mixing ({mid}) and truncation', mapping, out_rtol)
            out(f'returned_latents_z{suffix}', ref_lat, got_lat.contiguous(),
                'return_latents=True after z-space mixing and truncation', mapping, out_rtol)
            out(f'unfused_generator{suffix}', first(Go([t['z1']], noise=t['noise'])),
                Gu(z=t['z1'], noise=t['noise']),
                'catgen fused_modconv=False vs the official fused code', unfused, out_rtol)
        print(f'  gradients{suffix}', flush=True)
        checks[f'generator_backward_mixing_z{suffix}'] = compare_gradients(
            g_backward(Go, 'official_mixing', t), g_backward(Gc, 'mixing_z', t), grad_rtol,
            f'{loss}, [z1, z2] inject_index={mid} vs catgen per-layer z mix_latents(z1, z2) '
            '(the StyleGAN2Synthesizer training path)', mapping, metric=metric)
        checks[f'unfused_generator_backward{suffix}'] = compare_gradients(
            g_backward(Go, 'official', t), g_backward(Gu, 'plain', t), grad_rtol,
            f'catgen fused_modconv=False: {loss}, z [B, D], noise list', unfused, metric=metric)

    rounding_checks(torch.float32)
    if a.float64:
        rounding_checks(torch.float64)

    config = dict(size=size, style_dim=a.style_dim, n_mlp=a.n_mlp,
                  channel_multiplier=a.channel_multiplier, batch_size=B,
                  d_batch_sizes=list(a.d_batch_size), seed=a.seed, n_latent=L,
                  num_layers=cg.num_layers, perturbation=PERTURBATION)
    return dict(config=config, channels={str(k): v for k, v in widths.items()},
                catgen_channel_config=dict(max_channels=cap, channel_base=base),
                official_channel_table=(cap, base) == (512, 16384),
                blur_kernels_checked=n_kernels,
                parameters=dict(generator=sum(p.numel() for p in cg.parameters()),
                                discriminator=sum(p.numel() for p in cd.parameters())),
                checks=checks, differences_by_design=design)


# ----------------------------------------------------------------------------- report
def _fmt(x):
    if x is None:
        return '-'
    return '0' if x == 0 else f'{x:.3g}'


def print_table(size, entry):
    """One row per check: max |diff|, the gated relative measure against its tolerance."""
    print(f'\nsize {size} (channels {entry["channels"]}):')
    print(f'  {"check":36s} {"expect":8s} {"max|diff|":>10s} {"measure":>7s} {"value":>9s} '
          f'{"tol":>7s} {"bit-id":>6s}  ok')
    for name, c in entry['checks'].items():
        measure = 'rel' if c['kind'] == 'output' else c['metric']
        expect = 'exact' if c['expect'] == EXACT else 'rounding'
        worst = f'  (worst: {c["worst"]})' if c.get('worst') else ''
        print(f'  {name:36s} {expect:8s} {_fmt(c["max_abs_diff"]):>10s} {measure:>7s} '
              f'{_fmt(c.get(measure)):>9s} {_fmt(c["rtol"]):>7s} '
              f'{"yes" if c["bit_identical"] else "no":>6s}  '
              f'{"ok" if c["passed"] else "FAIL"}{worst}')


def main(argv=None):
    a = parse_args(argv)
    official_dir = check_official_dir(a.official_dir)
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    official, stubbed = import_official(official_dir)
    t0 = time.time()
    report = dict(
        tool='tools/benchmarks/stylegan2_vs_official.py', torch=torch.__version__,
        device='cpu', threads=torch.get_num_threads(), official=OFFICIAL,
        official_commit=official_commit(official_dir), official_extensions_stubbed=stubbed,
        tolerances=dict(rtol=a.rtol, grad_rtol=a.grad_rtol, rounding_rtol=a.rounding_rtol,
                        rounding_grad_rtol=a.rounding_grad_rtol,
                        float64_rtol=a.float64_rtol if a.float64 else None),
        sizes={})
    for size in a.size:
        print(f'size {size}:', flush=True)
        report['sizes'][str(size)] = run_size(official, a, size)
    for size, entry in report['sizes'].items():
        print_table(size, entry)
    failed = [(size, name, c) for size, entry in report['sizes'].items()
              for name, c in entry['checks'].items() if not c['passed']]
    expected_exact = [(size, name, c) for size, entry in report['sizes'].items()
                      for name, c in entry['checks'].items() if c['expect'] == EXACT]
    not_identical = [f'{name} (size {size})' for size, name, c in expected_exact
                     if not c['bit_identical']]
    report.update(passed=not failed, bit_identical=not not_identical,
                  not_bit_identical=not_identical, seconds=round(time.time() - t0, 1))
    if failed:
        lines = []
        for size, name, c in failed:
            measure = 'rel' if c['kind'] == 'output' else c['metric']
            lines.append(f'  size {size} {name}: max |diff| {c["max_abs_diff"]}, {measure} '
                         f'{c.get(measure)} > {c["rtol"]}'
                         + (f' ({c["problem"]})' if 'problem' in c else '')
                         + (f', worst {c["worst"]}' if c.get('worst') else ''))
        raise SystemExit('error: catgen does not compute what the official code computes:\n'
                         + '\n'.join(lines) + '\nnothing written')
    from catgen.utils.io import write_text_atomic
    os.makedirs(osp.dirname(osp.abspath(a.out)), exist_ok=True)
    write_text_atomic(a.out, json.dumps(report, indent=2) + '\n')
    if not_identical:
        print(f'\nwithin tolerance; expected bit-identical but not: {", ".join(not_identical)}')
    else:
        print('\nevery comparison expected to be exact is bit-identical')
    print(f'all checks passed; written to {a.out}')


if __name__ == '__main__':
    main()
