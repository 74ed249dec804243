"""SPADE: spatially-adaptive (de)normalisation (Park et al., CVPR 2019)."""
import torch.nn as nn
import torch.nn.functional as F

from .sync_batch_norm import SyncBatchNorm2d


class SPADE(nn.Module):
    """Parameter-free normalisation modulated by a conditioning map.

    ``out = norm(x) * (1 + gamma(seg)) + beta(seg)`` where gamma and beta are 3x3 convs on a shared
    3x3 conv + ReLU embedding of the conditioning map resized (nearest) to ``x``'s size.

    Args:
        norm_nc: channels of the feature map ``x`` that is normalised.
        label_nc: channels of the conditioning map (classes, plus noise channels for OASIS).
        hidden_nc: channels of the shared embedding (128 in OASIS and SPADE).
        kernel_size: kernel of the three convs (3 in OASIS and SPADE).
        norm_type: 'batch' (parameter-free BatchNorm, a :class:`SyncBatchNorm2d`: statistics
            over the global batch under DDP, on CPU and GPU, as the official 'syncbatch'; plain
            BatchNorm2d with one process) or 'instance' (parameter-free InstanceNorm2d).
        norm_affine: give the norm a per-channel scale (initialised to 1) and shift (0) before the
            modulation: ``(x_hat * scale + shift) * (1 + gamma) + beta``. Off in OASIS and SPADE;
            BSA's configs turn it on (the sites it adapts). The module name stays
            ``param_free_norm`` so that source checkpoints load.
    """

    def __init__(self, norm_nc, label_nc, hidden_nc=128, kernel_size=3, norm_type='batch',
                 norm_affine=False):
        super().__init__()
        if norm_type == 'batch':
            self.param_free_norm = SyncBatchNorm2d(norm_nc, affine=norm_affine)
        elif norm_type == 'instance':
            self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=norm_affine)
        else:
            raise ValueError(f"SPADE norm_type must be 'batch' or 'instance', got {norm_type!r}")
        pad = kernel_size // 2
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc, hidden_nc, kernel_size, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden_nc, norm_nc, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden_nc, norm_nc, kernel_size, padding=pad)

    def forward(self, x, seg):
        """x: Tensor[B, norm_nc, H, W]; seg: Tensor[B, label_nc, h, w] -> Tensor[B, norm_nc, H, W]."""
        normalized = self.param_free_norm(x)
        if seg.shape[2:] != x.shape[2:]:
            seg = F.interpolate(seg, size=x.shape[2:], mode='nearest')
        actv = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)
