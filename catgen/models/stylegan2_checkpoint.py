"""Convert rosinality/stylegan2-pytorch checkpoints (the format CDC and DCL release their source
models in) into catgen checkpoints for :class:`~catgen.models.synthesizers.
stylegan2_synthesizer.StyleGAN2Synthesizer`.

A rosinality checkpoint is ``{'g': ..., 'd': ..., 'g_ema': ..., 'g_optim': ..., 'd_optim': ...,
'args': Namespace(size, latent, n_mlp, channel_multiplier, ...)}``; CDC's and DCL's source
checkpoints have the same keys (some without the optimizers or ``args``). catgen's
:class:`~catgen.models.generators.stylegan2_generator.StyleGAN2Generator` and
:class:`~catgen.models.discriminators.stylegan2_discriminator.StyleGAN2Discriminator` keep the
official parameter names, so the mapping is:

- ``g`` -> ``generator.*``, ``g_ema`` -> ``generator_ema.module.*`` (plus
  ``generator_ema.steps = 0``), ``d`` -> ``discriminator.*``; a leading ``module.`` is stripped;
- the blur filters (keys ending in ``.kernel``) are constants of the architecture that catgen
  does not save: each is checked against catgen's ``[1, 3, 3, 1]`` kernel and dropped (another
  filter is refused: it would be silently replaced);
- the architecture (size, style_dim, n_mlp, channel table) is inferred from the shapes, checked
  against ``args`` when present, and every key and shape is checked against a catgen model
  built on the 'meta' device; all problems are reported in one error.
"""
import re

import torch

from .discriminators.stylegan2_discriminator import StyleGAN2Discriminator
from .generators.stylegan2_generator import StyleGAN2Generator, stylegan2_channels
from .layers.upfirdn2d import make_blur_kernel

_MAX_LISTED = 20
PARTS = {'g': 'generator.', 'g_ema': 'generator_ema.module.', 'd': 'discriminator.'}


def _listing(keys):
    keys = sorted(keys)
    more = f' ... and {len(keys) - _MAX_LISTED} more' if len(keys) > _MAX_LISTED else ''
    return ', '.join(keys[:_MAX_LISTED]) + more


def _strip(sd):
    from catgen.utils.checkpoint import read_state_dict
    return read_state_dict(sd, wrappers=(), what='StyleGAN2 state dict')


def _arg(args, name):
    if args is None:
        return None
    return args.get(name) if isinstance(args, dict) else getattr(args, name, None)


def infer_channel_multiplier(widths, size, preferred=None):
    """The ``channel_multiplier`` whose official table gives ``widths`` ({res: channels}):
    ``preferred`` (the checkpoint's ``args``) when it does (at 32 px and below every multiplier
    gives 512 channels), else the first of 2, 1, 4, 8 that does.

    Raises:
        ValueError: no multiplier in 1..8 reproduces them.
    """
    for cm in ([int(preferred)] if preferred else []) + [2, 1, 4, 8]:
        if stylegan2_channels(size, cm) == widths:
            return cm
    raise ValueError(f'the channel widths {widths} are not the official StyleGAN2 table for any '
                     'channel_multiplier in (1, 2, 4, 8); build the model by hand and load the '
                     'weights with load_state_dict.')


def infer_generator_config(sd, preferred_cm=None):
    """StyleGAN2Generator keyword arguments from a rosinality generator state dict."""
    if 'style.1.weight' not in sd or 'input.input' not in sd:
        raise ValueError('not a rosinality StyleGAN2 generator state dict: no style.1.weight / '
                         f'input.input (keys: {_listing(sd)})')
    n_mlp = sum(1 for k in sd if re.fullmatch(r'style\.\d+\.weight', k))
    style_dim = sd['style.1.weight'].shape[1]
    n_rgb = sum(1 for k in sd if re.fullmatch(r'to_rgbs\.\d+\.bias', k))
    size = 2 ** (n_rgb + 2)
    widths = {4: sd['input.input'].shape[1]}
    for j in range(n_rgb):
        widths[2 ** (j + 3)] = sd[f'convs.{2 * j}.conv.weight'].shape[1]
    cm = infer_channel_multiplier(widths, size, preferred_cm)
    return dict(size=size, style_dim=style_dim, n_mlp=n_mlp, channel_multiplier=cm)


def infer_discriminator_config(sd, preferred_cm=None):
    """StyleGAN2Discriminator keyword arguments from a rosinality discriminator state dict."""
    if 'convs.0.0.weight' not in sd or 'final_linear.1.weight' not in sd:
        raise ValueError('not a rosinality StyleGAN2 discriminator state dict: no '
                         f'convs.0.0.weight / final_linear.1.weight (keys: {_listing(sd)})')
    n_blocks = sum(1 for k in sd if re.fullmatch(r'convs\.\d+\.conv1\.0\.weight', k))
    size = 2 ** (n_blocks + 2)
    widths = {size: sd['convs.0.0.weight'].shape[0]}
    for i in range(1, n_blocks + 1):
        widths[size // 2 ** i] = sd[f'convs.{i}.conv2.1.weight'].shape[0]
    cm = infer_channel_multiplier(dict(sorted(widths.items())), size, preferred_cm)
    return dict(size=size, channel_multiplier=cm)


def _match(name, official, model, problems):
    """Check ``official`` (kernels dropped) against ``model``; append problems; return the
    state dict in the model's key order."""
    blur = make_blur_kernel((1, 3, 3, 1))
    kernels = [k for k in official if k.endswith('.kernel')]
    for key in kernels:
        value = official[key].float()
        if not any(value.shape == blur.shape and torch.allclose(value, blur * f, atol=1e-6)
                   for f in (1, 4)):
            problems.append(f'{name}: {key} is not the [1, 3, 3, 1] blur kernel catgen uses '
                            f'(got {value.tolist()})')
    official = {k: v for k, v in official.items() if k not in kernels}
    expected = model.state_dict()
    unmapped = [k for k in official if k not in expected]
    missing = [k for k in expected if k not in official]
    mismatched = [f'{k}: official {tuple(official[k].shape)} vs catgen {tuple(v.shape)}'
                  for k, v in expected.items()
                  if k in official and tuple(official[k].shape) != tuple(v.shape)]
    if unmapped:
        problems.append(f'{name}: {len(unmapped)} keys map to nothing in catgen: '
                        f'{_listing(unmapped)}')
    if missing:
        problems.append(f'{name}: {len(missing)} catgen keys get no value: {_listing(missing)}')
    if mismatched:
        problems.append(f'{name}: {len(mismatched)} shapes differ: {_listing(mismatched)}')
    return {k: official[k] for k in expected if k in official}


def convert_rosinality_checkpoint(ckpt):
    """Map a rosinality/stylegan2-pytorch checkpoint to a catgen synthesizer checkpoint.

    Args:
        ckpt: dict with any of ``'g'``, ``'g_ema'``, ``'d'`` (state dicts) and optionally
            ``'args'`` (argparse Namespace or dict with ``size``, ``latent``, ``n_mlp``,
            ``channel_multiplier``).

    Returns:
        ``{'meta': {...}, 'state_dict': {...}}``; ``meta`` holds ``generator_cfg``,
        ``discriminator_cfg`` (build dicts for ``MODELS``), ``parts`` and ``source_args``.

    Raises:
        ValueError: no part, parts that disagree, or keys / shapes that do not match (all
            problems listed).
    """
    if not isinstance(ckpt, dict) or not any(k in ckpt for k in PARTS):
        got = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"a rosinality/CDC/DCL StyleGAN2 checkpoint holds 'g', 'g_ema' and/or "
                         f"'d' state dicts; got {got}")
    parts = {k: _strip(ckpt[k]) for k in PARTS if ckpt.get(k) is not None}
    args = ckpt.get('args')
    cm = _arg(args, 'channel_multiplier')
    configs = {k: (infer_discriminator_config(sd, cm) if k == 'd'
                   else infer_generator_config(sd, cm)) for k, sd in parts.items()}
    problems = []
    if 'g' in configs and 'g_ema' in configs and configs['g'] != configs['g_ema']:
        problems.append(f"g and g_ema differ: {configs['g']} vs {configs['g_ema']}")
    gen_cfg = configs.get('g_ema') or configs.get('g')
    disc_cfg = configs.get('d')
    for cfg in filter(None, (gen_cfg, disc_cfg)):
        for key, arg in (('size', 'size'), ('style_dim', 'latent'), ('n_mlp', 'n_mlp'),
                         ('channel_multiplier', 'channel_multiplier')):
            value = _arg(args, arg)
            if key in cfg and value is not None and int(value) != cfg[key]:
                problems.append(f"args.{arg}={value} but the weights say {key}={cfg[key]}")
    if gen_cfg and disc_cfg and gen_cfg['size'] != disc_cfg['size']:
        problems.append(f"generator size {gen_cfg['size']} != discriminator size "
                        f"{disc_cfg['size']}")
    state_dict = {}
    for key, sd in parts.items():
        with torch.device('meta'):
            model = (StyleGAN2Discriminator(**configs[key]) if key == 'd'
                     else StyleGAN2Generator(**configs[key]))
        matched = _match(key, sd, model, problems)
        state_dict.update({PARTS[key] + k: v for k, v in matched.items()})
    if problems:
        problems = list(dict.fromkeys(problems))  # once each (G and D share args checks)
        raise ValueError('cannot convert the StyleGAN2 checkpoint:\n  ' + '\n  '.join(problems))
    if 'g_ema' in parts:
        state_dict['generator_ema.steps'] = torch.tensor(0, dtype=torch.long)
    meta = dict(
        parts=[PARTS[k].split('.')[0] for k in parts],
        generator_cfg=None if gen_cfg is None else dict(type='StyleGAN2Generator', **gen_cfg),
        discriminator_cfg=(None if disc_cfg is None
                           else dict(type='StyleGAN2Discriminator', **disc_cfg)),
        source_args={k: _arg(args, k) for k in ('size', 'latent', 'n_mlp', 'channel_multiplier')
                     if _arg(args, k) is not None})
    return dict(meta=meta, state_dict=state_dict)
