"""DCL: dual contrastive learning for few-shot adaptation (Zhao et al., 2022).

Finetune everything, with two InfoNCE terms that keep the adapted generator's samples
corresponding to the source generator's (same label map, same noise):

- generator side (``loss_dcl_g``, weight 2): anchor = the adapted generator's feature for input i,
  positive = the source generator's feature for the same input, negatives = the source
  generator's features of the other inputs of the batch;
- discriminator side (``loss_dcl_d``, weight 0.5, added to the discriminator's loss): anchor =
  D's feature of the adapted image i, positive = D's feature of the source image i, negatives =
  D's features of the batch's real target images.

Temperature 0.07. There is no official training code; the weights come from a third-party
reimplementation (see docs/transfer.md).

catgen's choices:

- Features: generator side, every residual block output listed in ``g_layers`` (None = all),
  average-pooled to ``g_pool_size x g_pool_size`` and flattened; the InfoNCE losses of the layers
  are averaged. Discriminator side, the discriminator features named in ``d_layers`` (OASIS:
  ``'body_down.<i>'`` / ``'body_up.<i>'``; None = the lowest-resolution one, the U-Net
  bottleneck), pooled to ``d_pool_size`` (1: global average) and flattened. No learned
  projection head (nothing to train besides G and D). Similarities are cosine similarities (the
  vectors are L2-normalised inside :func:`info_nce`).
- Loading as :class:`~catgen.transfer.finetune_all.FinetuneAll` (class-dependent layers
  re-initialised, everything trains). The source generator is a frozen copy taken right after
  loading (``transfer.source_generator``), run in the adapted generator's train/eval mode; its
  re-initialised label-reading layers stay fixed.
- Noise: one z per step, drawn once and given to both generators. The discriminator term uses
  its own draw of fresh images (no gradient to the generators); the generator term gets no
  gradient into the discriminator (the synthesizer freezes it during the generator step).
- Needs a batch of at least 2 (the generator side's negatives are the other inputs).
"""
import inspect

import torch
import torch.nn.functional as F

from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


def info_nce(anchor, positive, negatives, temperature=0.07):
    """InfoNCE with cosine similarities.

    ``loss_i = -log( exp(s(a_i, p_i) / T) / (exp(s(a_i, p_i) / T) + sum_k exp(s(a_i, n_ik) / T)) )``
    with ``s`` the cosine similarity; the mean over i is returned.

    Args:
        anchor: Tensor[N, D].
        positive: Tensor[N, D].
        negatives: Tensor[N, K, D] (per-anchor negatives) or Tensor[K, D] (shared by all anchors).
        temperature: T > 0.

    Returns:
        scalar Tensor.
    """
    if anchor.shape != positive.shape or anchor.dim() != 2:
        raise ValueError(f'anchor and positive must both be [N, D], got {tuple(anchor.shape)} '
                         f'and {tuple(positive.shape)}')
    a = F.normalize(anchor, dim=-1)
    p = F.normalize(positive, dim=-1)
    n = F.normalize(negatives, dim=-1)
    pos = (a * p).sum(dim=-1, keepdim=True)
    if n.dim() == 2:
        neg = a @ n.t()
    elif n.dim() == 3 and n.shape[0] == a.shape[0]:
        neg = torch.einsum('nd,nkd->nk', a, n)
    else:
        raise ValueError(f'negatives must be [N, K, D] or [K, D], got {tuple(negatives.shape)}')
    logits = torch.cat([pos, neg], dim=1) / temperature
    target = torch.zeros(a.shape[0], dtype=torch.long, device=a.device)
    return F.cross_entropy(logits, target)


def pool_flat(feat, size):
    """Tensor[B, C, H, W] -> adaptive average pool to ``size x size`` -> Tensor[B, C*size*size]."""
    return F.adaptive_avg_pool2d(feat, size).flatten(1)


def others(x):
    """Tensor[B, D] -> Tensor[B, B - 1, D]: row i holds every x_j with j != i."""
    b = x.shape[0]
    mask = ~torch.eye(b, dtype=torch.bool, device=x.device)
    return x.unsqueeze(0).expand(b, b, -1)[mask].view(b, b - 1, -1)


def discriminator_features(disc, img, seg):
    """Named intermediate features of a discriminator.

    OASIS (``forward(img, return_features=True)``): its OrderedDict of block outputs. A
    multi-scale discriminator returning ``list[list[Tensor]]``: ``'scale<i>.<j>'`` for every
    intermediate feature (the final logits excluded). ``disc`` may be a DDP wrapper (it is
    called, not its inner module, so gradients are synchronised).

    Args:
        disc: the discriminator; img: Tensor[B, 3, H, W]; seg: Tensor[B, N, H, W].

    Returns:
        dict name -> Tensor[B, C, h, w].
    """
    params = inspect.signature(unwrap(disc).forward).parameters
    if 'return_features' in params:
        _, feats = disc(img, return_features=True)
        return feats
    out = disc(img, seg) if 'seg' in params else disc(img)
    if isinstance(out, (list, tuple)) and out and isinstance(out[0], (list, tuple)):
        return {f'scale{i}.{j}': f for i, scale in enumerate(out) for j, f in enumerate(scale[:-1])}
    raise TypeError(f'DCL cannot read intermediate features of {type(disc).__name__}: expected '
                    'forward(img, return_features=True) or a list of per-scale feature lists.')


@TRANSFER_STRATEGIES.register_module()
class DCL(FinetuneAll):
    """Finetune all weights with DCL's generator- and discriminator-side InfoNCE losses.

    Args:
        source_checkpoint: the source synthesizer checkpoint.
        g_weight: weight of the generator-side loss (2).
        d_weight: weight of the discriminator-side loss (0.5).
        temperature: InfoNCE temperature (0.07).
        g_layers: generator feature indices (``return_features`` list); None = all.
        g_pool_size: pooled size of generator features (4).
        d_layers: discriminator feature names; None = the lowest-resolution one.
        d_pool_size: pooled size of discriminator features (1).
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers, class_layers,
            source_generator_prefix, load_discriminator).
    """

    def __init__(self, source_checkpoint=None, g_weight=2.0, d_weight=0.5, temperature=0.07,
                 g_layers=None, g_pool_size=4, d_layers=None, d_pool_size=1, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        self.g_weight = g_weight
        self.d_weight = d_weight
        self.temperature = temperature
        self.g_layers = None if g_layers is None else [int(i) for i in g_layers]
        self.g_pool_size = int(g_pool_size)
        self.d_layers = None if d_layers is None else list(d_layers)
        self.d_pool_size = int(d_pool_size)
        self.source_generator = None

    def adapt(self, synth):
        self.source_generator = self.frozen_copy(unwrap(synth.generator))

    def _source(self, synth):
        source = self.source_generator
        source.train(unwrap(synth.generator).training)
        return source

    @staticmethod
    def _check_batch(b):
        if b < 2:
            raise ValueError(f'DCL contrasts the samples of a batch and needs batch size >= 2, '
                             f'got {b}; raise train_dataloader.batch_size.')

    def generator_losses(self, synth, inputs, fake):
        seg = inputs['seg']
        self._check_batch(seg.shape[0])
        z = synth.sample_noise(seg.shape[0], device=seg.device)
        _, feats = synth.generator(seg, z, return_features=True)
        with torch.no_grad():
            _, src_feats = self._source(synth)(seg, z, return_features=True)
        layers = self.g_layers if self.g_layers is not None else range(len(feats))
        losses = []
        for k in layers:
            a = pool_flat(feats[k], self.g_pool_size)
            p = pool_flat(src_feats[k], self.g_pool_size)
            losses.append(info_nce(a, p, others(p), self.temperature))
        return dict(loss_dcl_g=self.g_weight * torch.stack(losses).mean())

    def discriminator_losses(self, synth, inputs, fake):
        seg, real = inputs['seg'], inputs['img']
        b = seg.shape[0]
        self._check_batch(b)
        z = synth.sample_noise(b, device=seg.device)
        with torch.no_grad():
            adapted = synth.generator(seg, z)
            source = self._source(synth)(seg, z)
        feats = discriminator_features(synth.discriminator, torch.cat([adapted, source, real]),
                                       torch.cat([seg, seg, seg]))
        names = self.d_layers
        if names is None:  # the lowest-resolution feature map (first one of that size)
            names = [min(feats, key=lambda n: feats[n].shape[-2] * feats[n].shape[-1])]
        losses = []
        for name in names:
            if name not in feats:
                raise KeyError(f'DCL d_layers: {name!r} is not a discriminator feature; '
                               f'known: {list(feats)}')
            a, p, n = pool_flat(feats[name], self.d_pool_size).split(b)
            losses.append(info_nce(a, p, n, self.temperature))
        return dict(loss_dcl_d=self.d_weight * torch.stack(losses).mean())
