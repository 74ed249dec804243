"""Synchronized BatchNorm in pure PyTorch: batch statistics over all processes, any backend.

``torch.nn.SyncBatchNorm`` runs on CUDA tensors only; this one all-reduces through
``torch.distributed.nn.functional.all_reduce`` (differentiable, works on gloo and NCCL), so CPU
DDP training normalises over the global batch as one process with the whole batch would.
"""
import torch
import torch.distributed as dist
import torch.nn as nn


def _world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce_sum(tensor):
    """Differentiable sum over processes (the backward pass sums the gradients likewise)."""
    from torch.distributed.nn.functional import all_reduce
    return all_reduce(tensor, op=dist.ReduceOp.SUM)


def global_batch_stats(x, dims):
    """Mean and biased variance of ``x`` over ``dims`` and over every process, and the count.

    Each rank computes its own mean and variance (``torch.var_mean``, as accurate as
    BatchNorm's); the per-rank values are gathered with one all-reduce of a zero-padded
    ``[world, 2C + 1]`` tensor and combined exactly (Chan et al.'s parallel formula)::

        mean = sum_r n_r m_r / N,   var = sum_r n_r (v_r + (m_r - mean)^2) / N

    Differentiable in ``x`` (the gradient flows through the all-reduce to every rank).

    Args:
        x: Tensor[B, C, ...] (float32; the caller upcasts lower precisions).
        dims: the reduced dimensions (all but 1).

    Returns:
        (mean Tensor[C], var Tensor[C], N): N is the element count per channel summed over all
        processes (an int with one process, else a 0-d Tensor: no host synchronisation).
    """
    rank, world = _world()
    var, mean = torch.var_mean(x, dim=dims, correction=0)
    count = x.numel() // x.shape[1]
    if world == 1:
        return mean, var, count
    c = mean.numel()
    local = torch.cat([mean, var, mean.new_full((1,), float(count))])
    slots = torch.cat([local.new_zeros(rank, 2 * c + 1), local[None],
                       local.new_zeros(world - rank - 1, 2 * c + 1)])  # row ``rank`` is ours
    slots = _all_reduce_sum(slots)
    means, vars_, counts = slots[:, :c], slots[:, c:2 * c], slots[:, 2 * c:]
    total = counts.sum()
    g_mean = (counts * means).sum(0) / total
    g_var = (counts * (vars_ + (means - g_mean) ** 2)).sum(0) / total
    return g_mean, g_var, total.detach()


class SyncBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode statistics span every DDP process.

    With one process (or ``sync=False``, or in eval mode with running statistics) it *is*
    ``nn.BatchNorm2d`` (the same code runs). Under ``torch.distributed`` with more than one
    process and ``sync`` enabled, the batch mean and variance are those of the global batch:
    the output, the gradient and the running statistics equal those of ``nn.BatchNorm2d`` on
    the concatenation of all ranks' batches (up to float rounding). Every rank must call it the
    same number of times (it is a collective). State-dict keys equal ``nn.BatchNorm2d``'s.

    Args:
        num_features: channels C of the input.
        eps: added to the variance.
        momentum: running-statistics momentum (None: cumulative average), as BatchNorm2d.
        affine: learnable per-channel scale and shift (False: parameter-free, as in SPADE).
        track_running_stats: keep running mean/var for eval mode.
        sync: True: synchronise whenever a process group of more than one process is
            initialised; False: never (per-process statistics, as plain BatchNorm2d under DDP).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, sync=True):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats)
        if not isinstance(sync, bool):
            raise ValueError(f'sync must be True or False, got {sync!r}')
        self.sync = sync

    def extra_repr(self):
        return f'{super().extra_repr()}, sync={self.sync!r}'

    def _use_batch_stats(self):
        return self.training or (self.running_mean is None and self.running_var is None)

    def forward(self, x):
        """x: Tensor[B, C, H, W] -> Tensor[B, C, H, W], normalised per channel."""
        if not self.sync or not self._use_batch_stats() or _world()[1] == 1:
            return super().forward(x)
        self._check_input_dim(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f'{type(self).__name__}({self.num_features}) got an input with '
                             f'{x.shape[1]} channels: {tuple(x.shape)}')
        factor = 0.0
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                      else self.momentum)
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        mean, var, count = global_batch_stats(xf, dims=[0, 2, 3])
        if self.training and self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.running_mean.mul_(1 - factor).add_(mean.detach() * factor)
                self.running_var.mul_(1 - factor).add_(
                    var.detach() * (count / (count - 1)) * factor)
        shape = (1, -1, 1, 1)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)
