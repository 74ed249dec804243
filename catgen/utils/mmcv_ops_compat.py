"""A pure-PyTorch stand-in for ``mmcv.ops`` where mmcv's compiled extension is missing.

mmcv's compiled ops (``mmcv._ext``) do not build against torch >= 2.10, and ``mmcv-lite`` ships
without them. mmsegmentation imports a few names from ``mmcv.ops`` at import time, some of them
unguarded, so ``import mmseg.models`` fails with ``ModuleNotFoundError: No module named
'mmcv._ext'``. :func:`install_mmcv_ops_compat` puts a small module in ``sys.modules['mmcv.ops']``
that provides every name mmsegmentation 1.2 (and MMEngine) import from it:

=========================  ==========================================================  ============
name                       imported by                                                 here
=========================  ==========================================================  ============
``point_sample``           mmseg.models.utils.point_sample, decode_heads.point_head,   real
                           decode_heads.san_head, mmseg.utils.mask_classification
``sigmoid_focal_loss``     mmseg.models.losses.focal_loss                              real
``SigmoidFocalLoss``       (module form of the above, as mmcv)                         real
``CrissCrossAttention``    mmseg.models.decode_heads.cc_head (guarded only against     real
                           ModuleNotFoundError, so the name must exist)
``PSAMask``, ``psa_mask``  mmseg.models.decode_heads.psa_head (same)                   real
``DeformConv2d``,          mmseg.engine.optimizers.force_default_constructor and       stub
``ModulatedDeformConv2d``  MMEngine's DefaultOptimWrapperConstructor (only when
                           ``mmcv._ext`` exists)
``SyncBatchNorm``          MMEngine's revert/convert_sync_batchnorm                    stub
=========================  ==========================================================  ============

"real" names are pure-PyTorch implementations with mmcv's semantics (autograd gives the
backward). "stub" names can be imported and used in ``isinstance`` checks, but building one
raises :class:`NotImplementedError` that says what to use instead.

Nothing is installed when a real ``mmcv.ops`` imports, or when ``sys.modules['mmcv.ops']``
already holds another module.
"""
import importlib
import importlib.util
import math
import sys
import types

__all__ = ['install_mmcv_ops_compat', 'is_compat_installed']

_MARKER = '__catgen_mmcv_ops_compat__'


def is_compat_installed():
    """True when ``sys.modules['mmcv.ops']`` is catgen's pure-PyTorch stand-in."""
    return getattr(sys.modules.get('mmcv.ops'), _MARKER, False)


def install_mmcv_ops_compat():
    """Install catgen's pure-PyTorch ``mmcv.ops`` if, and only if, the compiled one cannot load.

    Idempotent. Returns ``True`` when the stand-in is in place (installed now or before) and
    ``False`` when nothing was done: a real ``mmcv.ops`` imports, another module already sits in
    ``sys.modules['mmcv.ops']``, or mmcv itself is not installed.
    """
    present = sys.modules.get('mmcv.ops')
    if present is not None:
        return bool(getattr(present, _MARKER, False))
    try:
        mmcv = importlib.import_module('mmcv')
    except ImportError:
        return False
    if importlib.util.find_spec('mmcv._ext') is not None:
        try:
            importlib.import_module('mmcv.ops')
            return False  # the real, compiled ops work: leave them alone
        except (ImportError, OSError):  # built against another torch, missing symbols...
            _forget_partial_imports()
    module = _build_module()
    sys.modules['mmcv.ops'] = module
    mmcv.ops = module
    return True


def _forget_partial_imports():
    for name in [n for n in sys.modules if n == 'mmcv.ops' or n.startswith('mmcv.ops.')]:
        del sys.modules[name]


def _not_implemented(name, instead):
    return NotImplementedError(
        f'mmcv.ops.{name} needs mmcv\'s compiled CUDA/C++ extension (mmcv._ext), which is not '
        f'installed here (mmcv-lite, or an mmcv build that does not match this torch); catgen '
        f'provides only a pure-PyTorch mmcv.ops with point_sample, sigmoid_focal_loss, '
        f'CrissCrossAttention and PSAMask. {instead}')


def _build_module():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def point_sample(input, points, align_corners=False, **kwargs):
        """Sample ``input`` at relative ``points`` (mmcv.ops.point_sample, pure PyTorch).

        Args:
            input: Tensor[N, C, H, W].
            points: Tensor[N, P, 2] or Tensor[N, Hg, Wg, 2], (x, y) in ``[0, 1] x [0, 1]``
                relative to the image, (0, 0) its top-left corner.
            align_corners: as :func:`torch.nn.functional.grid_sample`: ``False`` puts 0 and 1 on
                the outer edges of the corner pixels, ``True`` on their centres.
            **kwargs: passed on to ``grid_sample`` (``mode``, ``padding_mode``).

        Returns:
            Tensor[N, C, P] for 3-d ``points``, else Tensor[N, C, Hg, Wg].
        """
        add_dim = points.dim() == 3
        if add_dim:
            points = points.unsqueeze(2)
        output = F.grid_sample(input, points * 2.0 - 1.0, align_corners=align_corners,
                               **kwargs)
        return output.squeeze(3) if add_dim else output

    flt_min_log = math.log(torch.finfo(torch.float32).tiny)  # mmcv clamps p at FLT_MIN

    def _clamped_log(log_p):
        # forward: log(max(p, FLT_MIN)) as mmcv's kernel; backward: the unclamped analytic
        # gradient, as mmcv's backward kernel.
        return log_p + (log_p.clamp(min=flt_min_log) - log_p).detach()

    def sigmoid_focal_loss(input, target, gamma=2.0, alpha=0.25, weight=None, reduction='mean'):
        """Sigmoid focal loss with mmcv.ops.sigmoid_focal_loss's formula and reduction.

        For logit ``x[n, c]``, ``p = sigmoid(x)`` and ``t = target[n]``::

            loss[n, c] = -alpha * (1 - p) ** gamma * log(p)          if c == t
                         -(1 - alpha) * p ** gamma * log(1 - p)      otherwise
                         (times weight[t] when a per-class ``weight`` is given)

        A target outside ``[0, C)`` (e.g. ``C`` for background) makes every class negative.

        Args:
            input: float Tensor[N, C] logits.
            target: LongTensor[N] class indices.
            weight: optional Tensor[C], indexed by each sample's target class.
            reduction: ``'none'`` (Tensor[N, C]), ``'mean'`` (sum / N, as mmcv) or ``'sum'``.
        """
        if target.dtype != torch.long:
            raise TypeError(f'sigmoid_focal_loss: target must be a LongTensor of class '
                            f'indices, got {target.dtype}.')
        if input.dim() != 2 or target.dim() != 1 or input.size(0) != target.size(0):
            raise ValueError(f'sigmoid_focal_loss expects input [N, C] and target [N], got '
                             f'{tuple(input.shape)} and {tuple(target.shape)}.')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")
        num_classes = input.size(1)
        classes = torch.arange(num_classes, device=input.device)
        positive = (target.unsqueeze(1) == classes.unsqueeze(0)).to(input.dtype)
        p = torch.sigmoid(input)
        term_p = (1 - p).pow(gamma) * _clamped_log(F.logsigmoid(input))
        term_n = p.pow(gamma) * _clamped_log(F.logsigmoid(-input))
        loss = -positive * alpha * term_p - (1 - positive) * (1 - alpha) * term_n
        if weight is not None and weight.numel() > 0:
            if weight.dim() != 1 or weight.size(0) != num_classes:
                raise ValueError(f'sigmoid_focal_loss: weight must be Tensor[{num_classes}] '
                                 f'(one per class), got {tuple(weight.shape)}.')
            if bool(((target < 0) | (target >= num_classes)).any()):
                raise ValueError('sigmoid_focal_loss: with a per-class weight every target must '
                                 f'lie in [0, {num_classes}); mmcv\'s kernel reads past the '
                                 'weight otherwise. Apply the weight after the loss instead.')
            loss = loss * weight[target].unsqueeze(1)
        if reduction == 'mean':
            return loss.sum() / input.size(0)
        if reduction == 'sum':
            return loss.sum()
        return loss

    class SigmoidFocalLoss(nn.Module):
        """Module form of :func:`sigmoid_focal_loss` (as mmcv.ops.SigmoidFocalLoss)."""

        def __init__(self, gamma, alpha, weight=None, reduction='mean'):
            super().__init__()
            self.gamma = gamma
            self.alpha = alpha
            self.register_buffer('weight', weight)
            self.reduction = reduction

        def forward(self, input, target):
            return sigmoid_focal_loss(input, target, self.gamma, self.alpha, self.weight,
                                      self.reduction)

    class _Scale(nn.Module):  # state-dict compatible with mmcv.cnn.Scale
        def __init__(self, scale=1.0):
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(scale, dtype=torch.float))

        def forward(self, x):
            return x * self.scale

    class CrissCrossAttention(nn.Module):
        """Criss-cross attention (CCNet), mmcv's own pure-PyTorch formulation.

        ``forward(x: Tensor[B, C, H, W]) -> Tensor[B, C, H, W]``; state-dict keys as mmcv
        (``query_conv``, ``key_conv``, ``value_conv``, ``gamma.scale``).
        """

        def __init__(self, in_channels):
            super().__init__()
            self.query_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
            self.key_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
            self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
            self.gamma = _Scale(0.)
            self.in_channels = in_channels

        def forward(self, x):
            B, C, H, W = x.size()
            query = self.query_conv(x)
            key = self.key_conv(x)
            value = self.value_conv(x)
            neg_inf_diag = torch.diag(x.new_full((H,), float('-inf')))
            energy_h = torch.einsum('bchw,bciw->bwhi', query, key) + neg_inf_diag
            energy_h = energy_h.transpose(1, 2)
            energy_w = torch.einsum('bchw,bchj->bhwj', query, key)
            attn = F.softmax(torch.cat([energy_h, energy_w], dim=-1), dim=-1)
            out = torch.einsum('bciw,bhwi->bchw', value, attn[..., :H])
            out = out + torch.einsum('bchj,bhwj->bchw', value, attn[..., H:])
            return (self.gamma(out) + x).contiguous()

        def __repr__(self):
            return f'{self.__class__.__name__}(in_channels={self.in_channels})'

    def psa_mask(input, psa_type, mask_size):
        """Point-wise spatial attention mask re-arrangement (mmcv.ops.psa_mask, pure PyTorch).

        Args:
            input: Tensor[N, h_mask * w_mask, H, W], one value per mask offset and position.
            psa_type: 0 / ``'collect'`` or 1 / ``'distribute'``.
            mask_size: ``(h_mask, w_mask)`` or an int.

        Returns:
            Tensor[N, H * W, H, W]. With ``half = (mask - 1) // 2`` and the neighbour
            ``(h + i - half_h, w + j - half_w)`` of ``(h, w)`` inside the map: *collect* puts
            ``input[n, i * w_mask + j, h, w]`` at ``[n, neighbour, h, w]``, *distribute* at
            ``[n, h * W + w, neighbour]``; all else is 0.
        """
        psa_type = {'collect': 0, 'distribute': 1}.get(psa_type, psa_type)
        if psa_type not in (0, 1):
            raise ValueError(f"psa_type must be 'collect' (0) or 'distribute' (1), got "
                             f'{psa_type!r}.')
        h_mask, w_mask = (mask_size, mask_size) if isinstance(mask_size, int) else mask_size
        n, c, h, w = input.shape
        if c != h_mask * w_mask:
            raise ValueError(f'psa_mask: input has {c} channels, mask_size {h_mask}x{w_mask} '
                             f'needs {h_mask * w_mask}.')
        device = input.device
        hi = torch.arange(h_mask, device=device).view(h_mask, 1, 1, 1)
        wi = torch.arange(w_mask, device=device).view(1, w_mask, 1, 1)
        hh = torch.arange(h, device=device).view(1, 1, h, 1)
        ww = torch.arange(w, device=device).view(1, 1, 1, w)
        nh = (hh + hi - (h_mask - 1) // 2).expand(h_mask, w_mask, h, w)
        nw = (ww + wi - (w_mask - 1) // 2).expand(h_mask, w_mask, h, w)
        valid = (nh >= 0) & (nh < h) & (nw >= 0) & (nw < w)
        centre = (hh * w + ww).expand(h_mask, w_mask, h, w)
        neighbour = nh * w + nw
        if psa_type == 0:
            target = neighbour * (h * w) + centre
        else:
            target = centre * (h * w) + neighbour
        source = torch.arange(c * h * w, device=device).view(h_mask, w_mask, h, w)
        values = input.reshape(n, c * h * w)[:, source[valid]]
        out = input.new_zeros(n, h * w * h * w).index_copy(1, target[valid], values)
        return out.view(n, h * w, h, w)

    class PSAMask(nn.Module):
        """Module form of :func:`psa_mask` (as mmcv.ops.PSAMask)."""

        def __init__(self, psa_type, mask_size=None):
            super().__init__()
            if psa_type not in ('collect', 'distribute'):
                raise ValueError(f"psa_type must be 'collect' or 'distribute', got {psa_type!r}.")
            self.psa_type_enum = 0 if psa_type == 'collect' else 1
            self.mask_size = mask_size
            self.psa_type = psa_type

        def forward(self, input):
            return psa_mask(input, self.psa_type_enum, self.mask_size)

        def __repr__(self):
            return (f'{self.__class__.__name__}(psa_type={self.psa_type}, '
                    f'mask_size={self.mask_size})')

    def _stub(name, instead):
        def __init__(self, *args, **kwargs):
            raise _not_implemented(name, instead)
        return type(name, (nn.Module,), {'__init__': __init__, '__module__': 'mmcv.ops',
                                         '__doc__': f'Unavailable without mmcv._ext: {instead}'})

    module = types.ModuleType('mmcv.ops', __doc__)
    members = dict(
        point_sample=point_sample,
        sigmoid_focal_loss=sigmoid_focal_loss,
        SigmoidFocalLoss=SigmoidFocalLoss,
        CrissCrossAttention=CrissCrossAttention,
        psa_mask=psa_mask,
        PSAMask=PSAMask,
        DeformConv2d=_stub('DeformConv2d', 'Use a model without deformable convolutions, or '
                           'torchvision.ops.DeformConv2d.'),
        ModulatedDeformConv2d=_stub('ModulatedDeformConv2d', 'Use a model without modulated '
                                    'deformable convolutions, or torchvision.ops.deform_conv2d '
                                    'with a mask.'),
        SyncBatchNorm=_stub('SyncBatchNorm', 'Use torch.nn.SyncBatchNorm (MMEngine: '
                            "convert_sync_batchnorm(model, implementation='torch'))."),
    )
    for name, obj in members.items():
        obj.__module__ = 'mmcv.ops'
        obj.__qualname__ = name
        setattr(module, name, obj)
    module.__all__ = sorted(members)
    setattr(module, _MARKER, True)
    return module
