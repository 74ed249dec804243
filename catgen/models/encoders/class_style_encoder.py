"""ClassStyleEncoder: an image and its label map -> one style token per class (CA2-SIS).

A U-Net of grouped convolutions, one group per class, so that each class has its own channels
(the official ``MultiScaleEffStyleEncoder``; ``K`` classes, ``f`` features per class):

    image -> conv3x3 (3 -> 4fK... with f = num_features: K * f channels) -> GN(K groups) -> ReLU
    encoder: ``num_down`` x [conv3x3 stride 2, groups K, doubling -> GN(K) -> ReLU]
    decoder stage j (``num_up`` of them): bilinear x2 -> conv3x3 (groups K, halving) -> GN(K) ->
        ReLU; the per-class masked average of its output (the class's mask resized, nearest)
        -> a grouped 1x1 conv to ``style_dim`` per class -> tanh; then the encoder feature of
        the same size is concatenated after it (the U-Net skip)

The K tokens are the concatenation of the ``num_up`` stage styles: Tensor[B, K, num_up *
style_dim] (CA2-SIS: 5 x 256 = 1280). A class absent from the label map pools zeros and its
token is ``tanh(bias)`` (as the official code). The concatenation order (decoder features
first, skip second) means the next grouped conv's groups do not align with classes; it is kept
to reproduce the official model.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


def _block(conv, channels, groups):
    return [conv, nn.GroupNorm(groups, channels), nn.ReLU()]


@MODELS.register_module()
class ClassStyleEncoder(nn.Module):
    """Per-class style tokens of an image (module doc).

    Args:
        num_classes: K, the one-hot label map's channels (every class gets a token).
        num_down: stride-2 encoder stages (6).
        num_up: decoder stages, each giving ``style_dim`` of every token (5).
        num_features: channels per class after the first conv (4).
        style_dim: width of each stage's style (256).
        img_channels: image channels (3).
    """

    def __init__(self, num_classes, num_down=6, num_up=5, num_features=4, style_dim=256,
                 img_channels=3):
        super().__init__()
        if not 1 <= num_up < num_down:
            raise ValueError(f'num_up must be in [1, num_down - 1 = {num_down - 1}], got '
                             f'{num_up}')
        k = int(num_classes)
        self.num_classes, self.num_up, self.style_dim = k, int(num_up), int(style_dim)
        self.token_dim = self.num_up * self.style_dim
        width = [k * num_features * 2 ** i for i in range(num_down + 1)]
        self.first_layer = nn.Sequential(*_block(
            nn.Conv2d(img_channels, width[0], 3, padding=1), width[0], k))
        self.enc_layers = nn.ModuleList([
            nn.Sequential(*_block(nn.Conv2d(width[i], width[i + 1], 3, stride=2, padding=1,
                                            groups=k), width[i + 1], k))
            for i in range(num_down)])
        self.dec_layers = nn.ModuleList()
        self.out_layers = nn.ModuleList()
        for j in range(self.num_up):
            i = num_down - 1 - j
            in_ch = width[i + 1] if j == 0 else 2 * width[i + 1]
            self.dec_layers.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                *_block(nn.Conv2d(in_ch, width[i], 3, padding=1, groups=k), width[i], k)))
            self.out_layers.append(nn.Sequential(
                nn.Conv1d(width[i], self.style_dim * k, 1, groups=k), nn.Tanh()))

    def forward(self, img, seg):
        """img: Tensor[B, 3, H, W] in [-1, 1]; seg: one-hot Tensor[B, K, H, W] ->
        tokens Tensor[B, K, num_up * style_dim]."""
        b, k = img.shape[0], self.num_classes
        if seg.shape[1] != k:
            raise ValueError(f'ClassStyleEncoder expects a {k}-channel label map, got '
                             f'{seg.shape[1]}')
        x = self.first_layer(img)
        skips = []
        for layer in self.enc_layers:
            x = layer(x)
            skips.append(x)
        x = skips[-1]
        styles = []
        for j, (dec, out) in enumerate(zip(self.dec_layers, self.out_layers)):
            x = dec(x)
            mask = F.interpolate(seg.float(), size=x.shape[-2:], mode='nearest')
            mask = mask.repeat_interleave(x.shape[1] // k, dim=1)
            pooled = (x * mask).sum((2, 3)) / (mask.sum((2, 3)) + 1e-5)
            styles.append(out(pooled[..., None]).view(b, k, self.style_dim))
            if j < self.num_up - 1:  # (the official code also concatenates after the last)
                x = torch.cat([x, skips[-2 - j]], dim=1)
        return torch.cat(styles, dim=-1)
