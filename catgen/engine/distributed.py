"""Distributed set-up: NCCL on GPUs through MMEngine, gloo on CPU through catgen.

MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrappers pass CUDA
``device_ids``; neither works for CPU processes. :func:`setup_distributed` initialises the gloo
process group itself (the Runner then skips ``init_dist``) and selects
:class:`SeparateDistributedDataParallel`, which wraps generator, discriminator (and
Fewshot-SMIS's encoder) separately,
drops ``device_ids`` on CPU and makes every other part of the synthesizer (the EMA generator,
frozen source copies) start identical on all ranks.

What else is synchronised under DDP, and where (docs/distributed.md has the whole picture):

* gradients of G and D: their DDP wrappers; the synthesizer's ``train_step`` calls them;
* batch statistics of SPADE's parameter-free BatchNorm:
  :class:`catgen.models.layers.SyncBatchNorm2d`;
* OASIS's class-balancing weights: :class:`catgen.models.losses.OASISLoss` (``sync_class_weights``);
* random noise: ``randomness.diff_rank_seed=True`` (set here for distributed runs) gives every
  rank its own noise; ``model.train_noise='per_sample'`` makes it independent of the ranks.
"""
import datetime
import functools
import os

import torch
import torch.distributed as dist
from mmengine.model import MMSeparateDistributedDataParallel
from torch.nn.parallel import DistributedDataParallel

from catgen.registry import MODEL_WRAPPERS

#: submodules of a synthesizer that DDP may wrap: they are called through their wrappers
DDP_PARTS = ('generator', 'discriminator', 'encoder',  # encoder: Fewshot-SMIS
             'rearranger', 'mapper')  # SIS-UG


def world_info():
    """``(rank, world_size)`` of the default process group; ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_distributed():
    """True inside an initialised process group with more than one process."""
    return world_info()[1] > 1


@MODEL_WRAPPERS.register_module()
class SeparateDistributedDataParallel(MMSeparateDistributedDataParallel):
    """MMEngine's per-part DDP wrapper (one DDP for G, one for D: each has its own optimizer),
    usable on CPU (gloo) as well as on GPUs (NCCL).

    The synthesizer's ``train_step`` runs on the inner module, whose ``generator`` and
    ``discriminator`` attributes are then the DDP wrappers: calling them runs DDP's forward, so
    the backward pass all-reduces (averages) their gradients. Parts without trainable parameters
    (the EMA generator, frozen copies of a transfer strategy, losses) stay unwrapped; their
    parameters and buffers are broadcast from rank 0 here, so that they start identical on every
    rank whatever the per-rank seed was when they were built.

    Checkpoints: the Runner saves ``synthesizer.state_dict()``, whose keys would read
    ``generator.module.*`` under this wrapper; a state-dict hook registered here drops that
    ``.module`` so that a checkpoint written by a distributed run has the keys of a
    single-process one (``generator.*``) and loads anywhere (MMEngine's loader, used to resume,
    unwraps DDP parts itself).

    Args:
        module: the synthesizer.
        broadcast_buffers: broadcast buffers (BatchNorm statistics) from rank 0 each forward.
        find_unused_parameters: let DDP tolerate parameters that get no gradient.
        device_ids: CUDA device of this process; ignored (dropped) on CPU.
        **kwargs: more arguments of ``torch.nn.parallel.DistributedDataParallel``.
    """

    def __init__(self, module, broadcast_buffers=False, find_unused_parameters=False,
                 device_ids=None, **kwargs):
        extra = [name for name, sub in module._modules.items()
                 if sub is not None and name not in DDP_PARTS
                 and any(p.requires_grad for p in sub.parameters())]
        if extra:
            raise NotImplementedError(
                f'distributed training wraps only {", ".join(DDP_PARTS)} of a synthesizer, but '
                f'{type(module).__name__}.{", ".join(extra)} has trainable parameters of its own '
                '(e.g. BSA\'s per-image latents), whose gradients DDP would not average. Train '
                'this model with one process (tools/train.py without --launcher).')
        if torch.cuda.is_available() and device_ids is not None:
            kwargs['device_ids'] = device_ids
        super().__init__(module, broadcast_buffers=broadcast_buffers,
                         find_unused_parameters=find_unused_parameters, **kwargs)
        wrapped = tuple(name for name in DDP_PARTS
                        if isinstance(module._modules.get(name), DistributedDataParallel))
        module.register_state_dict_post_hook(functools.partial(_drop_ddp_prefix, parts=wrapped))
        if is_distributed():
            for name, sub in module._modules.items():
                if sub is not None and name not in DDP_PARTS:
                    broadcast_module_state(sub)


def _drop_ddp_prefix(module, state_dict, prefix, local_metadata, parts=()):
    """State-dict post-hook: ``<prefix><part>.module.<key>`` -> ``<prefix><part>.<key>`` for
    the DDP-wrapped ``parts``, in place, keeping the order (and the version metadata)."""
    heads = tuple(f'{prefix}{part}.module.' for part in parts)

    def rename(key):
        for head in heads:
            if key.startswith(head):
                return head[:-len('module.')] + key[len(head):]
        return key

    items = list(state_dict.items())
    if not any(rename(k) != k for k, _ in items):
        return  # nothing wrapped, or already plain (MMEngine's get_state_dict unwraps itself)
    state_dict.clear()
    state_dict.update((rename(k), v) for k, v in items)
    meta = getattr(state_dict, '_metadata', None)
    if meta is not None:
        wrappers = {f'{prefix}{part}' for part in parts}
        old = [(key, value) for key, value in meta.items() if key not in wrappers]
        meta.clear()  # the DDP wrappers' own entries go; their modules' take their names
        meta.update((rename(key + '.')[:-1], value) for key, value in old)


@torch.no_grad()
def broadcast_module_state(module, src=0):
    """Copy every parameter and buffer of ``module`` from rank ``src`` to all ranks (in place)."""
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point() or tensor.dtype in (torch.int64, torch.int32, torch.uint8,
                                                          torch.bool):
            dist.broadcast(tensor.data, src)


def _scoped_wrapper_type(wrapper_cfg):
    """``'catgen.<Type>'`` for a wrapper registered in catgen's registry only.

    MMEngine's ``Runner.wrap_model`` looks the type up in its *root* registry, which does not
    search child scopes: an unscoped catgen type would come back as None there.
    """
    wrapper_type = wrapper_cfg.get('type') if wrapper_cfg is not None else None
    if isinstance(wrapper_type, str) and '.' not in wrapper_type \
            and wrapper_type in MODEL_WRAPPERS.module_dict:
        wrapper_cfg['type'] = f'{MODEL_WRAPPERS.scope}.{wrapper_type}'
    return wrapper_cfg


def setup_distributed(cfg):
    """Prepare ``cfg`` (and the process group on CPU) for ``cfg.launcher``.

    * every launcher: ``model_wrapper_cfg`` defaults to :class:`SeparateDistributedDataParallel`
      (its type is scoped so that MMEngine's Runner finds it);
    * a distributed launcher: ``randomness.diff_rank_seed`` defaults to True, so every rank
      draws its own noise, LabelMix masks and augmentations (with one seed for all, every rank
      would draw the same noise: the global batch would hold each noise vector W times);
    * on CPU (no CUDA): initialise the gloo process group from torchrun's environment and set
      ``env_cfg.dist_cfg.backend='gloo'``. On GPUs MMEngine's ``init_dist`` sets up NCCL.

    Returns ``cfg``, changed in place.
    """
    launcher = cfg.get('launcher', 'none')
    cfg.setdefault('model_wrapper_cfg', dict(type='SeparateDistributedDataParallel',
                                             broadcast_buffers=False,
                                             find_unused_parameters=False))
    _scoped_wrapper_type(cfg.model_wrapper_cfg)
    if launcher == 'none':
        return cfg
    randomness = cfg.get('randomness', None) or dict(seed=None)
    randomness.setdefault('diff_rank_seed', True)
    cfg.randomness = randomness
    if torch.cuda.is_available():
        return cfg
    if launcher != 'pytorch':
        raise NotImplementedError(f'launcher {launcher!r} on CPU: only torchrun (--launcher '
                                  'pytorch, tools/dist_train.sh) is supported without GPUs.')
    if not dist.is_initialized():
        for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
            if var not in os.environ:
                raise RuntimeError(f'--launcher pytorch needs ${var}; start with torchrun or '
                                   'tools/dist_train.sh CONFIG NUM_PROCESSES.')
        dist.init_process_group('gloo', timeout=datetime.timedelta(minutes=30))
    cfg.setdefault('env_cfg', {})
    cfg.env_cfg.setdefault('dist_cfg', {})
    cfg.env_cfg['dist_cfg']['backend'] = 'gloo'
    return cfg
