"""Ranger: RAdam + Lookahead + gradient centralisation, the optimiser of pSp and Fewshot-SMIS.

The pSp / Fewshot-SMIS code trains its encoder (and, in Fewshot-SMIS, inverts images) with
Less Wright's Ranger (``ranger.py`` in those repositories): per step

1. gradient centralisation (Yong et al. 2020): every gradient with more than one dimension
   loses its mean over all dimensions but the first, ``g <- g - mean_{1..}(g)``;
2. a rectified Adam (RAdam, Liu et al. 2020) step, betas ``(0.95, 0.999)``, eps ``1e-5``
   (un-rectified, i.e. momentum SGD, while the variance estimate has <= 5 degrees of freedom);
3. every ``k`` (6) steps, Lookahead (Zhang et al. 2019): the slow weights move ``alpha`` (0.5) of
   the way to the fast ones and the fast weights are reset to them. The slow weights start at
   the parameters' values before the first step, as in Ranger.

catgen composes the maintained pieces instead of copying Ranger: ``torch.optim.RAdam`` for
step 2 (its update, ``lr * rect * m_hat * sqrt(1 - beta2^t) / (sqrt(v) + eps)``, and its
un-rectified branch are Ranger's) and ``timm.optim.Lookahead`` for step 3; step 1 is the loop
below (tested against a step-by-step reference of Ranger's maths).
"""
import functools

import torch

from catgen.registry import OPTIMIZERS


@OPTIMIZERS.register_module()
def Ranger(params, lr=1e-3, alpha=0.5, k=6, betas=(0.95, 0.999), eps=1e-5, weight_decay=0.0,
           use_gc=True):
    """RAdam + Lookahead + gradient centralisation (the module docstring): a
    ``torch.optim.Optimizer``. timm is imported on first use (catgen's registries import no
    heavy dependency).

    Args:
        params: parameters or parameter groups.
        lr: learning rate (Ranger's default 1e-3; pSp/Fewshot-SMIS encoder 1e-4).
        alpha: Lookahead's slow-weight step (0.5).
        k: Lookahead's synchronisation period in steps (6).
        betas: RAdam's (beta1, beta2) ((0.95, 0.999)).
        eps: RAdam's epsilon (1e-5).
        weight_decay: L2 weight decay (0).
        use_gc: gradient centralisation on gradients with more than one dimension (True).
    """
    return _ranger_class()(params, lr=lr, alpha=alpha, k=k, betas=betas, eps=eps,
                           weight_decay=weight_decay, use_gc=use_gc)


@functools.lru_cache(maxsize=None)
def _ranger_class():
    from timm.optim import Lookahead
    return type('Ranger', (_RangerMixin, Lookahead), {})


class _RangerMixin:
    """Ranger's construction and step on top of timm's Lookahead (see :func:`Ranger`)."""

    def __init__(self, params, lr=1e-3, alpha=0.5, k=6, betas=(0.95, 0.999), eps=1e-5,
                 weight_decay=0.0, use_gc=True):
        if lr <= 0:
            raise ValueError(f'Ranger: lr must be > 0, got {lr}')
        base = torch.optim.RAdam(params, lr=lr, betas=tuple(betas), eps=eps,
                                 weight_decay=weight_decay)
        super().__init__(base, alpha=alpha, k=k)
        self.use_gc = bool(use_gc)

    @torch.no_grad()
    def step(self, closure=None):
        initial = {}
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                if 'lookahead_slow_buff' not in self._base_optimizer.state[p]:
                    initial[p] = p.detach().clone()  # Ranger: slow weights = initial ones
                if self.use_gc and p.grad.dim() > 1:
                    p.grad.sub_(p.grad.mean(dim=tuple(range(1, p.grad.dim())), keepdim=True))
        loss = self._base_optimizer.step(closure)
        for p, value in initial.items():  # after RAdam has initialised its state
            self._base_optimizer.state[p]['lookahead_slow_buff'] = value
        for group in self.param_groups:  # timm's Lookahead.step after the base step
            group['lookahead_step'] += 1
            if group['lookahead_step'] % group['lookahead_k'] == 0:
                self.update_slow(group)
        return loss
