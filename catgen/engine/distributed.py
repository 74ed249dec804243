"""Distributed set-up: NCCL on GPUs through MMEngine, gloo on CPU through catgen.

MMEngine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrappers pass CUDA
``device_ids``; neither works for CPU processes. :func:`setup_distributed` initialises the gloo
process group itself (the Runner then skips ``init_dist``) and selects
:class:`SeparateDistributedDataParallel`, which wraps generator and discriminator separately
and drops ``device_ids`` on CPU.
"""
import datetime
import os

import torch
import torch.distributed as dist
from mmengine.model import MMSeparateDistributedDataParallel

from catgen.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class SeparateDistributedDataParallel(MMSeparateDistributedDataParallel):
    """MMEngine's per-part DDP wrapper (one DDP for G, one for D: each has its own optimizer),
    usable on CPU (gloo) as well as on GPUs (NCCL).

    Args:
        module: the synthesizer.
        broadcast_buffers: broadcast buffers (BatchNorm statistics) from rank 0 each forward.
        find_unused_parameters: let DDP tolerate parameters that get no gradient.
        device_ids: CUDA device of this process; ignored (dropped) on CPU.
    """

    def __init__(self, module, broadcast_buffers=False, find_unused_parameters=False,
                 device_ids=None, **kwargs):
        if torch.cuda.is_available() and device_ids is not None:
            kwargs['device_ids'] = device_ids
        super().__init__(module, broadcast_buffers=broadcast_buffers,
                         find_unused_parameters=find_unused_parameters, **kwargs)


def setup_distributed(cfg):
    """Prepare ``cfg`` (and the process group on CPU) for ``cfg.launcher``; no-op for 'none'."""
    launcher = cfg.get('launcher', 'none')
    cfg.setdefault('model_wrapper_cfg', dict(type='SeparateDistributedDataParallel',
                                             broadcast_buffers=False,
                                             find_unused_parameters=False))
    if launcher == 'none' or torch.cuda.is_available():
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
    cfg.env_cfg['dist_cfg'] = dict(backend='gloo')
    return cfg
