"""Builds one optimizer wrapper per trainable part of a synthesizer (generator, discriminator)."""
import copy

from mmengine.optim import OptimWrapperDict

from catgen.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GANOptimWrapperConstructor:
    """Build an :class:`OptimWrapperDict` with one wrapper per model part.

    Config::

        optim_wrapper = dict(
            constructor='GANOptimWrapperConstructor',
            generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
            discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999))))

    Each entry is an ordinary optim wrapper config (``type`` defaults to ``OptimWrapper``;
    ``AmpOptimWrapper`` for mixed precision). Its parameters come from ``model.optim_params(key)``
    when the model defines it (so transfer strategies decide what trains and may add parameters
    such as BSA's per-image latents), else from ``getattr(model, key).parameters()``; parameters
    with ``requires_grad=False`` are left out. ``optim_params`` may also return parameter groups,
    dicts ``{'params': [...], 'lr': ...}`` as PyTorch optimizers take them (BSA: its own learning
    rate for the scales, shifts and latents); an entry without ``lr`` gets the optimizer config's,
    frozen parameters are dropped from each group and empty groups are left out.

    Args:
        optim_wrapper_cfg: dict mapping part names to optim wrapper configs.
        paramwise_cfg: unsupported here (per-part wrappers replace it); must be None.
    """

    def __init__(self, optim_wrapper_cfg, paramwise_cfg=None):
        if paramwise_cfg:
            raise ValueError('GANOptimWrapperConstructor takes no paramwise_cfg; give each part '
                             '(generator, discriminator) its own optim wrapper config instead.')
        if not isinstance(optim_wrapper_cfg, dict) or not optim_wrapper_cfg:
            raise ValueError('optim_wrapper must map part names (e.g. generator, discriminator) '
                             f'to optim wrapper configs, got {optim_wrapper_cfg!r}')
        self.optim_wrapper_cfg = copy.deepcopy(optim_wrapper_cfg)

    def __call__(self, model):
        if hasattr(model, 'module'):  # a DDP wrapper
            model = model.module
        wrappers = {}
        for key, cfg in self.optim_wrapper_cfg.items():
            cfg = copy.deepcopy(cfg)
            if 'optimizer' not in cfg:
                raise ValueError(f'optim_wrapper.{key} needs an `optimizer` entry, got {cfg!r}')
            if hasattr(model, 'optim_params'):
                params = model.optim_params(key)
            elif hasattr(model, key):
                params = getattr(model, key).parameters()
            else:
                raise ValueError(f'optim_wrapper names "{key}" but the model '
                                 f'{type(model).__name__} has no such part.')
            params = trainable(params)
            if not params:
                raise ValueError(f'optim_wrapper.{key}: no trainable parameters (all frozen?). '
                                 'Remove this entry or unfreeze something.')
            optimizer_cfg = cfg.pop('optimizer')
            optimizer = OPTIMIZERS.build(dict(optimizer_cfg, params=params))
            cfg.setdefault('type', 'OptimWrapper')
            wrappers[key] = OPTIM_WRAPPERS.build(cfg, default_args=dict(optimizer=optimizer))
        return OptimWrapperDict(**wrappers)


def trainable(params):
    """The trainable entries of ``params``: parameters with ``requires_grad``, and parameter
    groups (dicts with ``'params'``) holding only those (groups left empty are dropped). A list
    that mixes groups and bare parameters gets the bare ones as one group of default settings."""
    params = list(params)
    groups = [p for p in params if isinstance(p, dict)]
    if not groups:
        return [p for p in params if p.requires_grad]
    bare = [p for p in params if not isinstance(p, dict)]
    if bare:
        groups.append(dict(params=bare))
    out = []
    for group in groups:
        if 'params' not in group:
            raise ValueError(f"a parameter group needs a 'params' entry, got keys {sorted(group)}")
        kept = [p for p in group['params'] if p.requires_grad]
        if kept:
            out.append(dict(group, params=kept))
    return out
