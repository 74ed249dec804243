"""Ranger (RAdam + Lookahead + gradient centralisation) against a hand-written reference."""
import math

import pytest
import torch

from catgen.engine.optimizers import Ranger
from catgen.registry import OPTIMIZERS


def reference_ranger(p0, grads, lr, alpha=0.5, k=6, betas=(0.95, 0.999), eps=1e-5):
    """Ranger's maths step by step (lessw2020's ranger.py as pSp ships it: gradient
    centralisation, rectified Adam, Lookahead with slow weights starting at the initial
    parameters)."""
    p = p0.clone()
    slow = p0.clone()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, 1):
        g = g - g.mean(dim=tuple(range(1, g.dim())), keepdim=True)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        rho = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
        if rho > 5:
            rect = math.sqrt((rho - 4) * (rho - 2) * rho_inf
                             / ((rho_inf - 4) * (rho_inf - 2) * rho))
            # Ranger: step size sqrt(1 - b2^t) * rect / (1 - b1^t), eps added to sqrt(v)
            p = p - lr * m_hat * rect * math.sqrt(1 - b2 ** t) / (v.sqrt() + eps)
        else:
            p = p - lr * m_hat
        if t % k == 0:
            slow = slow + alpha * (p - slow)
            p = slow.clone()
    return p


def test_matches_reference_over_lookahead_syncs():
    torch.manual_seed(0)
    p0 = torch.randn(3, 4)
    grads = [torch.randn(3, 4) for _ in range(13)]
    param = torch.nn.Parameter(p0.clone())
    opt = Ranger([param], lr=0.1)
    for g in grads:
        param.grad = g.clone()
        opt.step()
    assert torch.allclose(param.detach(), reference_ranger(p0, grads, 0.1), atol=1e-7, rtol=1e-6)


def test_gradient_centralisation_only_on_matrices_and_optional():
    w = torch.nn.Parameter(torch.zeros(2, 3))
    b = torch.nn.Parameter(torch.zeros(3))
    opt = Ranger([w, b], lr=1.0, k=100)
    w.grad = torch.ones(2, 3)  # centred: zero -> no move
    b.grad = torch.ones(3)     # a vector: not centred
    opt.step()
    assert torch.equal(w.detach(), torch.zeros(2, 3))
    assert (b.detach() < 0).all()
    w2 = torch.nn.Parameter(torch.zeros(2, 3))
    opt = Ranger([w2], lr=1.0, k=100, use_gc=False)
    w2.grad = torch.ones(2, 3)
    opt.step()
    assert (w2.detach() < 0).all()


def test_registered_state_dict_roundtrip():
    p = torch.nn.Parameter(torch.ones(2, 2))
    opt = OPTIMIZERS.build(dict(type='Ranger', params=[p], lr=1e-3))
    p.grad = torch.randn(2, 2)
    opt.step()
    state = opt.state_dict()
    q = torch.nn.Parameter(torch.ones(2, 2))
    opt2 = Ranger([q], lr=1e-3)
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]['lookahead_step'] == 1
    with pytest.raises(ValueError, match='lr'):
        Ranger([q], lr=0)
