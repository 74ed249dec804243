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

- Features: generator side, the generator's feature levels (model protocol) listed in
  ``g_layers`` (names or indices; None = all), from the training step's one generator forward,
  average-pooled to ``g_pool_size x g_pool_size`` and flattened; the InfoNCE losses of the
  levels are averaged. Discriminator side, the discriminator's feature levels named in
  ``d_layers`` (OASIS: ``'body_down.<i>'`` / ``'body_up.<i>'``; None = the lowest-resolution
  one, the U-Net bottleneck), pooled to ``d_pool_size`` (1: global average) and flattened. No learned
  projection head (nothing to train besides G and D). Similarities are cosine similarities (the
  vectors are L2-normalised inside :func:`info_nce`).
- Loading as :class:`~catgen.transfer.finetune_all.FinetuneAll` (class-dependent layers
  re-initialised, everything trains). The source generator (``transfer.source_generator``) is
  the REAL source model (:mod:`catgen.transfer.source_anchor`): the loaded source generator when
  the label spaces match, else the source generator reading ``A^T y_t`` through an affinity
  matrix given as CAT's (``affinity`` / ``affinity_file``); ``anchor='reinit_copy'`` keeps
  catgen's earlier frozen copy with re-initialised class channels. It runs in the adapted
  generator's train/eval mode.
- Noise: the step's z is given to both generators. The discriminator term uses the images of
  the discriminator update (no gradient to the generators) and the source generator's images
  for the same label maps and noise; the generator term gets no gradient into the
  discriminator (the synthesizer freezes it during the generator step).
- Needs a batch of at least 2 (the generator side's negatives are the other inputs).
"""
import torch
import torch.nn.functional as F

from catgen.registry import TRANSFER_STRATEGIES

from .cdc import resolve_levels
from .finetune_all import FinetuneAll
from .source_anchor import SourceAnchorMixin


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


@TRANSFER_STRATEGIES.register_module()
class DCL(SourceAnchorMixin, FinetuneAll):
    """Finetune all weights with DCL's generator- and discriminator-side InfoNCE losses.

    Args:
        source_checkpoint: the source synthesizer checkpoint.
        g_weight: weight of the generator-side loss (2).
        d_weight: weight of the discriminator-side loss (0.5).
        temperature: InfoNCE temperature (0.07).
        g_layers: generator feature levels (names, or indices into ``feature_levels()``);
            None = all.
        g_pool_size: pooled size of generator features (4).
        d_layers: discriminator feature levels; None = the lowest-resolution one.
        d_pool_size: pooled size of discriminator features (1).
        anchor: the source generator to compare with: None (``'source'`` when the label spaces
            match, else ``'affinity'``), ``'source'``, ``'affinity'`` or ``'reinit_copy'``
            (see :mod:`catgen.transfer.source_anchor`).
        affinity: affinity estimator config for the ``'affinity'`` anchor (as CAT's).
        affinity_file: a saved affinity matrix (``.json``) instead.
        target_classes, source_classes, target_dataset, source_dataset: the class names and
            data for the affinity, as CAT's (``target_dataset`` is filled in by the tools).
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    needs_generator_features = True

    def __init__(self, source_checkpoint=None, g_weight=2.0, d_weight=0.5, temperature=0.07,
                 g_layers=None, g_pool_size=4, d_layers=None, d_pool_size=1, anchor=None,
                 affinity=None, affinity_file=None, target_classes=None, source_classes=None,
                 target_dataset=None, source_dataset=None, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        self.g_weight = g_weight
        self.d_weight = d_weight
        self.temperature = temperature
        self.g_layers = None if g_layers is None else list(g_layers)
        self.g_pool_size = int(g_pool_size)
        self.d_layers = None if d_layers is None else list(d_layers)
        self.d_pool_size = int(d_pool_size)
        self.init_source_anchor(anchor=anchor, affinity=affinity, affinity_file=affinity_file,
                                target_classes=target_classes, source_classes=source_classes,
                                target_dataset=target_dataset, source_dataset=source_dataset)

    @staticmethod
    def _check_batch(b):
        if b < 2:
            raise ValueError(f'DCL contrasts the samples of a batch and needs batch size >= 2, '
                             f'got {b}; raise train_dataloader.batch_size.')

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        seg = inputs['seg']
        self._check_batch(seg.shape[0])
        if feats is None:
            raise ValueError('DCL reads the generator features of the training step; the '
                             'synthesizer did not pass them (needs_generator_features).')
        _, src_feats = self.source_forward(synth, seg, z, return_features=True)
        losses = []
        for k in resolve_levels(self.g_layers, feats.keys(), 'DCL g_layers'):
            a = pool_flat(feats[k], self.g_pool_size)
            p = pool_flat(src_feats[k], self.g_pool_size)
            losses.append(info_nce(a, p, others(p), self.temperature))
        return dict(loss_dcl_g=self.g_weight * torch.stack(losses).mean())

    def discriminator_losses(self, synth, inputs, fake, z=None):
        """``fake``: the discriminator update's (detached) images, made with noise ``z``."""
        seg, real = inputs['seg'], inputs['img']
        b = seg.shape[0]
        self._check_batch(b)
        source = self.source_forward(synth, seg, z)
        _, feats = synth.discriminator(torch.cat([fake, source, real]), torch.cat([seg, seg, seg]),
                                       return_features=True)
        names = self.d_layers
        if names is None:  # the lowest-resolution feature map (first one of that size)
            names = [min(feats, key=lambda n: feats[n].shape[-2] * feats[n].shape[-1])]
        losses = []
        for name in resolve_levels(names, feats.keys(), 'DCL d_layers'):
            a, p, n = pool_flat(feats[name], self.d_pool_size).split(b)
            losses.append(info_nce(a, p, n, self.temperature))
        return dict(loss_dcl_d=self.d_weight * torch.stack(losses).mean())
