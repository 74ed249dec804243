"""The IR-SE residual unit of ArcFace's IR-SE50 backbone (Deng et al. 2019), pSp's encoder body."""
import torch.nn as nn


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al. 2018): ``x * sigmoid(W2 relu(W1 avgpool(x)))``, no biases.

    Args:
        channels: input and output channels.
        reduction: the bottleneck is ``channels // reduction`` wide (16).
    """

    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x):
        """x: Tensor[B, C, H, W] -> the same shape."""
        w = x.mean(dim=(2, 3), keepdim=True)
        return x * self.fc2(self.fc1(w).relu()).sigmoid()


class IRSEBlock(nn.Module):
    """``BN -> conv3x3 -> PReLU -> conv3x3 (stride) -> BN -> SE`` plus a shortcut.

    The shortcut is an identity (a stride-``stride`` subsampling) when the width does not
    change, else a strided 1x1 conv and BN, as pSp's ``bottleneck_IR_SE``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1, or 2 to halve the resolution (the first unit of each stage).
        se_reduction: the squeeze-excite bottleneck ratio (16).
    """

    def __init__(self, in_channels, out_channels, stride=1, se_reduction=16):
        super().__init__()
        if in_channels == out_channels:
            self.shortcut = nn.MaxPool2d(1, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            SqueezeExcite(out_channels, se_reduction))

    def forward(self, x):
        """x: Tensor[B, in_channels, H, W] -> Tensor[B, out_channels, H / stride, W / stride]."""
        return self.residual(x) + self.shortcut(x)
