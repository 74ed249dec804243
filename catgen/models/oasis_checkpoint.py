"""Convert official boschresearch/OASIS weights into a catgen checkpoint.

The official code saves three plain state dicts: ``<iter>_G.pth`` (``OASIS_Generator``),
``<iter>_D.pth`` (``OASIS_Discriminator``) and ``<iter>_EMA.pth`` (the EMA generator).
catgen's :class:`~catgen.models.generators.oasis_generator.OASISGenerator` and
:class:`~catgen.models.discriminators.oasis_discriminator.OASISDiscriminator` keep the official
module names, so the mapping is:

- a leading ``module.`` (DataParallel), repeated or not, is stripped;
- in the generators, SPADE's ``first_norm`` becomes ``param_free_norm``;
- everything else (including spectral norm's ``weight_orig`` / ``weight_u`` / ``weight_v``) is
  kept; keys are prefixed ``generator.``, ``discriminator.`` and ``generator_ema.module.`` (the
  synthesizer's ``mmengine.model.ExponentialMovingAverage``), plus ``generator_ema.steps = 0``.

Widths and the number of classes are inferred from the weights and checked against a catgen
model built with them (on the 'meta' device: no memory is allocated); any official key that
does not map, any catgen key left without a value and any shape difference is reported in one
error.
"""
import torch

from .discriminators.oasis_discriminator import OASISDiscriminator
from .generators.oasis_generator import OASISGenerator

_MAX_LISTED = 20


def strip_module_prefix(state_dict):
    """Remove leading ``module.`` prefixes (DataParallel / DDP) from every key.

    state_dict: dict[str, Tensor] -> dict[str, Tensor].
    """
    from catgen.utils.checkpoint import read_state_dict
    return read_state_dict(state_dict, wrappers=(), what='OASIS state dict')


def _rename_generator_key(key):
    return key.replace('.first_norm.', '.param_free_norm.')


def _conv_weight(sd, prefix):
    """Weight of a conv that may be spectral-normalised (``weight_orig``) or not."""
    for name in ('weight_orig', 'weight'):
        if f'{prefix}.{name}' in sd:
            return sd[f'{prefix}.{name}']
    raise KeyError(f'no {prefix}.weight_orig or {prefix}.weight in the state dict')


def _multipliers(widths, base, what):
    bad = [w for w in widths if w % base]
    if bad:
        raise ValueError(f'{what}: widths {widths} are not multiples of {base}')
    return tuple(w // base for w in widths)


def infer_generator_config(sd, z_dim=64):
    """OASISGenerator keyword arguments from a (renamed, unprefixed) official G state dict.

    sd: dict[str, Tensor]; z_dim: noise channels the official model used (64; 0 for
    ``--no_3dnoise``) -> dict with num_classes, z_dim, base_channels, channel_multipliers,
    spectral_norm, spade_hidden.
    """
    try:
        label_nc = sd['fc.weight'].shape[1]
        num_blocks = 1 + max(int(k.split('.')[1]) for k in sd if k.startswith('body.'))
        widths = [sd['fc.weight'].shape[0]]
        widths += [_conv_weight(sd, f'body.{i}.conv_1').shape[0] for i in range(num_blocks)]
        base = sd['conv_img.weight'].shape[1]
        spade_hidden = sd['body.0.norm_0.mlp_shared.0.weight'].shape[0]
    except (KeyError, ValueError) as err:
        raise ValueError(f'this does not look like an official OASIS generator state dict: {err}'
                         ) from err
    if label_nc <= z_dim:
        raise ValueError(f'the generator reads {label_nc} channels, not more than z_dim={z_dim}; '
                         'pass the z_dim it was trained with (0 for --no_3dnoise)')
    return dict(num_classes=label_nc - z_dim, z_dim=z_dim, base_channels=base,
                channel_multipliers=_multipliers(widths, base, 'generator'),
                spectral_norm='body.0.conv_0.weight_orig' in sd, spade_hidden=spade_hidden)


def infer_discriminator_config(sd):
    """OASISDiscriminator keyword arguments from an (unprefixed) official D state dict.

    sd: dict[str, Tensor] -> dict with num_classes, base_channels, channel_multipliers,
    spectral_norm.
    """
    try:
        head = sd['layer_up_last.weight']
        num_blocks = 1 + max(int(k.split('.')[1]) for k in sd if k.startswith('body_down.'))
        widths = [_conv_weight(sd, f'body_down.{i}.conv2.1').shape[0] for i in range(num_blocks)]
    except (KeyError, ValueError) as err:
        raise ValueError('this does not look like an official OASIS discriminator state dict: '
                         f'{err}') from err
    base = head.shape[1]
    return dict(num_classes=head.shape[0] - 1, base_channels=base,
                channel_multipliers=_multipliers(widths, base, 'discriminator'),
                spectral_norm='body_down.0.conv2.1.weight_orig' in sd)


def _listing(keys):
    keys = sorted(keys)
    more = f' ... and {len(keys) - _MAX_LISTED} more' if len(keys) > _MAX_LISTED else ''
    return ', '.join(keys[:_MAX_LISTED]) + more


def _match(name, official, model):
    """Check ``official`` against ``model``'s state dict; fill absent BN step counters.

    Returns (state_dict in model's key order, filled keys, list of problem strings).
    """
    expected = model.state_dict()
    unmapped = [k for k in official if k not in expected]
    missing = [k for k in expected if k not in official]
    filled = [k for k in missing if k.endswith('num_batches_tracked')]
    missing = [k for k in missing if k not in filled]
    mismatched = [f'{k}: official {tuple(official[k].shape)} vs catgen {tuple(v.shape)}'
                  for k, v in expected.items()
                  if k in official and tuple(official[k].shape) != tuple(v.shape)]
    problems = []
    if unmapped:
        problems.append(f'{name}: {len(unmapped)} official keys map to nothing in catgen: '
                        f'{_listing(unmapped)}')
    if missing:
        problems.append(f'{name}: {len(missing)} catgen keys get no official value: '
                        f'{_listing(missing)}')
    if mismatched:
        problems.append(f'{name}: {len(mismatched)} shapes differ: {_listing(mismatched)}')
    out = {}
    for key in expected:
        if key in official:
            out[key] = official[key]
        elif key in filled:
            out[key] = torch.tensor(0, dtype=torch.long)
    return out, filled, problems


def convert_official_oasis_state_dict(generator=None, discriminator=None, ema=None,
                                      num_classes=None, z_dim=64, crop_size=256,
                                      aspect_ratio=1.0):
    """Map official OASIS state dicts to a catgen synthesizer checkpoint.

    Args:
        generator: official ``*_G.pth`` state dict, or None.
        discriminator: official ``*_D.pth`` state dict, or None.
        ema: official ``*_EMA.pth`` state dict, or None.
        num_classes: expected semantic channels incl. don't care (151 / 183 / 35); None infers
            it; when given, every part must agree.
        z_dim: noise channels of the official generator (64; 0 for ``--no_3dnoise``).
        crop_size: recorded in the generator config of ``meta`` (official: 256, Cityscapes 512).
        aspect_ratio: recorded likewise (official: 1.0, Cityscapes 2.0).

    Returns:
        ``{'meta': {...}, 'state_dict': {...}}`` with keys ``generator.*``,
        ``discriminator.*``, ``generator_ema.module.*`` and ``generator_ema.steps`` for the parts
        given. ``meta`` holds ``num_classes``, ``generator_cfg`` / ``discriminator_cfg`` (build
        dicts for ``MODELS``), ``parts`` and ``filled_keys``.

    Raises:
        ValueError: nothing given, parts disagree on num_classes or widths, or keys/shapes do
            not match a catgen model (all problems listed).
    """
    if generator is None and discriminator is None and ema is None:
        raise ValueError('give at least one of generator, discriminator, ema')
    parts = {}
    if generator is not None:
        parts['generator'] = {_rename_generator_key(k): v
                              for k, v in strip_module_prefix(generator).items()}
    if ema is not None:
        parts['generator_ema'] = {_rename_generator_key(k): v
                                  for k, v in strip_module_prefix(ema).items()}
    if discriminator is not None:
        parts['discriminator'] = strip_module_prefix(discriminator)

    configs = {}
    for name, sd in parts.items():
        configs[name] = (infer_discriminator_config(sd) if name == 'discriminator'
                         else infer_generator_config(sd, z_dim))
    inferred = {name: cfg['num_classes'] for name, cfg in configs.items()}
    if num_classes is not None:
        inferred['--num-classes'] = num_classes
    if len(set(inferred.values())) != 1:
        raise ValueError(f'the parts disagree on num_classes: {inferred} (a generator reads '
                         f'num_classes + z_dim channels; is z_dim={z_dim} right?)')
    num_classes = next(iter(inferred.values()))
    if 'generator' in configs and 'generator_ema' in configs \
            and configs['generator'] != configs['generator_ema']:
        raise ValueError(f'generator and EMA differ: {configs["generator"]} vs '
                         f'{configs["generator_ema"]}')

    state_dict, filled_all, problems = {}, [], []
    for name, sd in parts.items():
        cfg = dict(configs[name])
        if name == 'discriminator':
            with torch.device('meta'):
                model = OASISDiscriminator(**cfg, init_gain=None)
            prefix = 'discriminator.'
        else:
            cfg.update(crop_size=crop_size, aspect_ratio=aspect_ratio)
            with torch.device('meta'):
                model = OASISGenerator(**cfg, init_gain=None)
            prefix = 'generator_ema.module.' if name == 'generator_ema' else 'generator.'
        configs[name] = cfg
        mapped, filled, part_problems = _match(name, sd, model)
        problems += part_problems
        filled_all += [prefix + k for k in filled]
        state_dict.update({prefix + k: v for k, v in mapped.items()})
        if name == 'generator_ema':
            state_dict['generator_ema.steps'] = torch.tensor(0, dtype=torch.long)
    if problems:
        raise ValueError('official OASIS weights do not fit catgen\'s modules:\n  '
                         + '\n  '.join(problems))

    gen_cfg = configs.get('generator', configs.get('generator_ema'))
    meta = dict(
        converted_from='boschresearch/OASIS',
        num_classes=num_classes,
        parts=sorted(parts),
        filled_keys=filled_all,
        generator_cfg=dict(type='OASISGenerator', **gen_cfg) if gen_cfg else None,
        discriminator_cfg=(dict(type='OASISDiscriminator', **configs['discriminator'])
                           if 'discriminator' in configs else None),
    )
    return dict(meta=meta, state_dict=state_dict)
