"""catgen's pure-PyTorch mmcv.ops: installed only when needed, and numerically as mmcv."""
import importlib
import importlib.util
import math
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from catgen.utils import mmcv_ops_compat as compat

REPO = Path(__file__).resolve().parents[2]
needs_ext_missing = pytest.mark.skipif(
    importlib.util.find_spec('mmcv._ext') is not None,
    reason='a compiled mmcv._ext is installed: the stand-in is not needed here')


@pytest.fixture(scope='module')
def ops():
    """catgen's implementation itself (not whatever sits in sys.modules)."""
    return compat._build_module()


def _run(code, timeout=120):
    path = os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@needs_ext_missing
def test_import_mmseg_models_in_fresh_interpreter_after_install():
    result = _run("""
        import sys
        from catgen.utils.mmcv_ops_compat import install_mmcv_ops_compat, is_compat_installed
        assert install_mmcv_ops_compat() is True
        import mmseg.models                                   # failed with mmcv._ext missing
        from mmseg.models.decode_heads import CCHead, PointHead, PSAHead
        from mmseg.models.losses import FocalLoss
        from mmseg.utils.mask_classification import point_sample
        import mmcv.ops
        assert is_compat_installed() and mmcv.ops is sys.modules['mmcv.ops']
        assert point_sample is mmcv.ops.point_sample
        from mmcv.ops import CrissCrossAttention, PSAMask, DeformConv2d, SyncBatchNorm
        # the heads that guard their import now get working ops
        assert CCHead(in_channels=16, channels=16, num_classes=3).cca is not None
        print('OK')
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith('OK')


# ------------------------------------------------------------------------------ installing


@pytest.fixture
def clean_ops_slot(monkeypatch):
    """Empty sys.modules['mmcv.ops'] (and mmcv.ops) for the test; everything restored after."""
    import mmcv
    monkeypatch.delitem(sys.modules, 'mmcv.ops', raising=False)
    monkeypatch.setattr(mmcv, 'ops', None, raising=False)
    monkeypatch.delattr(mmcv, 'ops')
    return mmcv


@needs_ext_missing
def test_install_when_compiled_ext_missing_and_idempotent(clean_ops_slot):
    assert compat.install_mmcv_ops_compat() is True
    module = sys.modules['mmcv.ops']
    assert compat.is_compat_installed()
    assert clean_ops_slot.ops is module
    assert compat.install_mmcv_ops_compat() is True
    assert sys.modules['mmcv.ops'] is module  # not rebuilt
    from mmcv.ops import point_sample, sigmoid_focal_loss  # noqa: F401


def test_no_op_when_a_real_mmcv_ops_is_already_imported(clean_ops_slot, monkeypatch):
    real = types.ModuleType('mmcv.ops')
    real.point_sample = object()
    monkeypatch.setitem(sys.modules, 'mmcv.ops', real)
    assert compat.install_mmcv_ops_compat() is False
    assert sys.modules['mmcv.ops'] is real
    assert not compat.is_compat_installed()


def test_no_op_when_compiled_ops_import(clean_ops_slot, monkeypatch):
    real = types.ModuleType('mmcv.ops')
    find_spec = importlib.util.find_spec
    import_module = importlib.import_module

    def fake_find_spec(name, *args):
        return object() if name == 'mmcv._ext' else find_spec(name, *args)

    def fake_import(name, *args):
        if name == 'mmcv.ops':
            sys.modules['mmcv.ops'] = real
            return real
        return import_module(name, *args)

    monkeypatch.setattr(importlib.util, 'find_spec', fake_find_spec)
    monkeypatch.setattr(importlib, 'import_module', fake_import)
    assert compat.install_mmcv_ops_compat() is False
    assert sys.modules['mmcv.ops'] is real


def test_installs_when_compiled_ext_exists_but_is_broken(clean_ops_slot, monkeypatch):
    find_spec = importlib.util.find_spec
    import_module = importlib.import_module

    def fake_import(name, *args):
        if name == 'mmcv.ops':
            raise ImportError('_ext.so: undefined symbol: _ZN3c10...')
        return import_module(name, *args)

    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: object() if name == 'mmcv._ext' else find_spec(name, *a))
    monkeypatch.setattr(importlib, 'import_module', fake_import)
    assert compat.install_mmcv_ops_compat() is True
    assert compat.is_compat_installed()


def test_unimplementable_names_import_but_raise_when_built(ops):
    for name in ('DeformConv2d', 'ModulatedDeformConv2d', 'SyncBatchNorm'):
        cls = getattr(ops, name)
        assert not isinstance(torch.nn.Conv2d(1, 1, 1), cls)  # usable in isinstance checks
        with pytest.raises(NotImplementedError, match=rf'mmcv\.ops\.{name} needs mmcv\'s compiled'):
            cls(3, 3, 3)


# ------------------------------------------------------------------------------ point_sample


def test_point_sample_hand_values(ops):
    img = torch.tensor([[[[0., 1.], [2., 3.]]]])  # [1, 1, 2, 2]
    # align_corners=False: (0, 0) and (1, 1) are the outer corners, pixel centres at 1/4, 3/4
    pts = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.5, 0.5], [0.5, 0.25]]])
    out = ops.point_sample(img, pts)
    assert out.shape == (1, 1, 5)
    assert torch.allclose(out[0, 0], torch.tensor([0., 1., 2., 1.5, 0.5]))
    # align_corners=True: (0, 0) and (1, 1) are the corner pixel centres
    pts = torch.tensor([[[0., 0.], [1., 1.], [0.5, 0.25], [1., 0.]]])
    out = ops.point_sample(img, pts, align_corners=True)
    # (0.5, 0.25): x halfway between columns, y a quarter down: 0.75*0.5 + 0.25*2.5 = 1.0
    assert torch.allclose(out[0, 0], torch.tensor([0., 3., 1.0, 1.]))
    # outside the image, zero padding as grid_sample
    out = ops.point_sample(img, torch.tensor([[[-1., -1.]]]))
    assert out.item() == 0.0


def test_point_sample_matches_grid_sample_and_keeps_grid_shape(ops):
    g = torch.Generator().manual_seed(0)
    img = torch.randn(2, 3, 5, 7, generator=g)
    pts = torch.rand(2, 11, 2, generator=g)
    for align in (False, True):
        ref = F.grid_sample(img, pts.unsqueeze(2) * 2 - 1, align_corners=align).squeeze(3)
        assert torch.allclose(ops.point_sample(img, pts, align_corners=align), ref)
    grid = torch.rand(2, 4, 6, 2, generator=g)
    out = ops.point_sample(img, grid)
    assert out.shape == (2, 3, 4, 6)
    assert torch.allclose(out, F.grid_sample(img, grid * 2 - 1, align_corners=False))


# ------------------------------------------------------------------------------ focal loss


def _focal_reference(x, target, gamma, alpha, weight=None):
    """Loop transcription of mmcv's sigmoid_focal_loss kernel, in float64."""
    n, c = x.shape
    out = torch.zeros(n, c, dtype=torch.float64)
    for i in range(n):
        t = int(target[i])
        for j in range(c):
            p = 1 / (1 + math.exp(-float(x[i, j])))
            if t == j:
                v = -alpha * (1 - p) ** gamma * math.log(max(p, 1.1754943508222875e-38))
            else:
                v = -(1 - alpha) * p ** gamma * math.log(max(1 - p, 1.1754943508222875e-38))
            out[i, j] = v * (float(weight[t]) if weight is not None else 1.0)
    return out


def test_sigmoid_focal_loss_matches_the_formula(ops):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(6, 4, generator=g) * 3).double()
    target = torch.tensor([0, 1, 2, 3, 4, 1])  # 4 == C: background, every class negative
    ref = _focal_reference(x, target, gamma=2.0, alpha=0.25)
    out = ops.sigmoid_focal_loss(x, target, 2.0, 0.25, None, 'none')
    assert out.shape == (6, 4)
    assert torch.allclose(out, ref)
    assert torch.allclose(ops.sigmoid_focal_loss(x, target), ref.sum() / 6)  # mean: sum / N
    assert torch.allclose(ops.sigmoid_focal_loss(x, target, reduction='sum'), ref.sum())
    assert torch.allclose(ops.sigmoid_focal_loss(x, target, 1.5, 0.6, None, 'none'),
                          _focal_reference(x, target, 1.5, 0.6))
    weight = torch.tensor([1., 2., 0.5, 3.], dtype=torch.float64)
    in_range = target.clamp(max=3)
    assert torch.allclose(ops.sigmoid_focal_loss(x, in_range, 2.0, 0.25, weight, 'none'),
                          _focal_reference(x, in_range, 2.0, 0.25, weight))
    with pytest.raises(ValueError, match='every target must'):
        ops.sigmoid_focal_loss(x, target, 2.0, 0.25, weight, 'none')
    loss = ops.SigmoidFocalLoss(gamma=2.0, alpha=0.25)(x, target)
    assert torch.allclose(loss, ref.sum() / 6)


def test_sigmoid_focal_loss_gradient_is_mmcvs_analytic_one(ops):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 2, 1, 3, 0])
    gamma, alpha = 2.0, 0.25
    ops.sigmoid_focal_loss(x, target, gamma, alpha, None, 'mean').backward()
    p = torch.sigmoid(x.detach())
    pos = F.one_hot(target, 4)[:, :3].double()
    # mmcv's backward kernel
    term_p = (1 - p) ** gamma * (1 - p - gamma * p * torch.log(p))
    term_n = p ** gamma * (gamma * (1 - p) * torch.log(1 - p) - p)
    grad = (-pos * alpha * term_p - (1 - pos) * (1 - alpha) * term_n) / 5
    assert torch.allclose(x.grad, grad)
    # extreme logits stay finite, forward clamps log(p) at FLT_MIN as mmcv
    big = torch.tensor([[-200., 200.]], requires_grad=True)
    loss = ops.sigmoid_focal_loss(big, torch.tensor([0]), gamma, alpha, None, 'none')
    assert torch.isfinite(loss).all()
    assert loss[0, 0].item() == pytest.approx(-alpha * math.log(1.1754943508222875e-38))
    loss.sum().backward()
    assert torch.isfinite(big.grad).all()


# ------------------------------------------------------------------------------ PSAMask, CCA


def _psamask_reference(x, psa_type, h_mask, w_mask):
    """Loop transcription of mmcv's CPU psamask_{collect,distribute}_forward."""
    n, _, h, w = x.shape
    out = torch.zeros(n, h * w, h, w, dtype=x.dtype)
    hh, hw = (h_mask - 1) // 2, (w_mask - 1) // 2
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for hi in range(max(0, hh - i), min(h_mask, h + hh - i)):
                    for wi in range(max(0, hw - j), min(w_mask, w + hw - j)):
                        v = x[b, hi * w_mask + wi, i, j]
                        ni, nj = hi + i - hh, wi + j - hw
                        if psa_type == 'collect':
                            out[b, ni * w + nj, i, j] = v
                        else:
                            out[b, i * w + j, ni, nj] = v
    return out


@pytest.mark.parametrize('psa_type', ['collect', 'distribute'])
def test_psamask_matches_mmcv_kernel(ops, psa_type):
    g = torch.Generator().manual_seed(3)
    h_mask, w_mask = 5, 7  # mmseg uses (2H-1, 2W-1) for an H x W map
    x = torch.randn(2, h_mask * w_mask, 3, 4, generator=g, requires_grad=True)
    out = ops.PSAMask(psa_type, (h_mask, w_mask))(x)
    assert out.shape == (2, 12, 3, 4)
    assert torch.equal(out, _psamask_reference(x.detach(), psa_type, h_mask, w_mask))
    out.sum().backward()  # differentiable; each kept input feeds exactly one output
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}


def test_criss_cross_attention_matches_a_loop_reference(ops):
    torch.manual_seed(4)
    cca = ops.CrissCrossAttention(16)
    assert set(cca.state_dict()) == {'query_conv.weight', 'query_conv.bias', 'key_conv.weight',
                                     'key_conv.bias', 'value_conv.weight', 'value_conv.bias',
                                     'gamma.scale'}
    x = torch.randn(1, 16, 3, 4)
    assert torch.allclose(cca(x), x)  # gamma starts at 0, as mmcv
    with torch.no_grad():
        cca.gamma.scale.fill_(1.0)
        q, k, v = cca.query_conv(x)[0], cca.key_conv(x)[0], cca.value_conv(x)[0]
        ref = torch.empty_like(x[0])
        for i in range(3):
            for j in range(4):
                # the column without the centre, then the whole row (centre counted once)
                keys = [(r, j) for r in range(3) if r != i] + [(i, c) for c in range(4)]
                energy = torch.stack([q[:, i, j] @ k[:, r, c] for r, c in keys])
                attn = energy.softmax(0)
                ref[:, i, j] = sum(a * v[:, r, c] for a, (r, c) in zip(attn, keys))
        assert torch.allclose(cca(x)[0], ref + x[0], atol=1e-5)
