"""CDC: cross-domain correspondence (Ojha et al., CVPR 2021).

Finetune everything, and make the adapted generator keep the source generator's *relative*
similarities between samples: for a batch of inputs, at a randomly chosen generator layer, the
cosine similarity of sample i's flattened feature map with every other sample's is turned into a
distribution by a softmax over the others (no temperature), for the frozen source generator and
for the adapted one; the loss is

    loss_cdc = weight * KL(p_source || p_adapted)      (weight 1000)

with mean reduction over all B * (B - 1) entries (``nn.KLDivLoss(reduction='mean')``, as the
official code). Both generators get the same label maps and the same noise z (drawn once).

catgen's choices:

- Loading as :class:`~catgen.transfer.finetune_all.FinetuneAll` (class channels restarted,
  everything trains). The frozen source generator is a copy of the generator taken right after
  loading (``transfer.source_generator``, saved in checkpoints): every weight is the source's
  except the restarted class channels, which the copy keeps fixed. It runs in the same
  train/eval mode as the adapted generator, so both normalise with the same (batch)
  statistics: at equal weights the loss is exactly 0.
- The adapted generator's features come from the training step's one generator forward (the
  synthesizer asks for the feature levels because ``needs_generator_features`` is True); the
  source generator runs once, without gradients, on the same label maps and noise.
- One level per step, drawn uniformly (torch's global RNG, seeded by the runner) from
  ``feature_layers`` (names of the generator's feature levels, or indices into
  ``feature_levels()``; None = all).
- The anchor-region scheme (image-level D near 10 anchor latents every 4th iteration, a
  patch-level D elsewhere) is omitted: the OASIS discriminator is already a per-pixel
  (segmentation) discriminator, i.e. it gives every generated image local, patch-level feedback,
  which is what CDC's patch-level D provides away from the anchors; an image-level realism
  score restricted to anchor noises has no counterpart in it. The adversarial loss is the
  synthesizer's own, on all samples.
- Needs a batch of at least 2 (the similarities are between samples); the paper uses 4.
"""
import torch
import torch.nn.functional as F

from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


def resolve_levels(levels, available, what):
    """Level names from ``levels`` (names, or indices into ``available``); None = all.

    Raises:
        KeyError: a name or index the network does not have (lists the known levels).
    """
    available = list(available)
    if levels is None:
        return available
    out = []
    for level in levels:
        if isinstance(level, int) and not isinstance(level, bool):
            if not -len(available) <= level < len(available):
                raise KeyError(f'{what}: level index {level} out of range; the network has '
                               f'{len(available)} feature levels {available}')
            out.append(available[level])
        elif level in available:
            out.append(level)
        else:
            raise KeyError(f'{what}: {level!r} is not a feature level; known: {available}')
    return out


def pairwise_similarity_logits(feat):
    """Cosine similarities of each sample's flattened features with every OTHER sample's.

    Args:
        feat: Tensor[B, ...] (B >= 2), one feature map per sample.

    Returns:
        Tensor[B, B - 1]: row i holds ``cos(feat_i, feat_j)`` for j != i in increasing order;
        ``softmax`` of a row is CDC's distribution (no temperature).
    """
    b = feat.shape[0]
    flat = F.normalize(feat.reshape(b, -1), dim=1)
    sim = flat @ flat.t()
    off_diag = ~torch.eye(b, dtype=torch.bool, device=feat.device)
    return sim[off_diag].view(b, b - 1)


def cdc_distance_loss(source_feat, adapted_feat):
    """``KL(p_source || p_adapted)`` with ``p = softmax(pairwise_similarity_logits(feat))``, mean
    over all B * (B - 1) entries (``nn.KLDivLoss()``'s default 'mean' reduction, as the official
    code); no weight. Gradients flow
    into ``adapted_feat`` only.

    Args:
        source_feat, adapted_feat: Tensor[B, C, H, W] (any equal shapes with B >= 2).

    Returns:
        scalar Tensor.
    """
    with torch.no_grad():
        log_p_src = F.log_softmax(pairwise_similarity_logits(source_feat), dim=1)
    log_p_ada = F.log_softmax(pairwise_similarity_logits(adapted_feat), dim=1)
    # p_src * (log p_src - log p_ada), both in log space: exactly 0 for equal features
    return F.kl_div(log_p_ada, log_p_src, reduction='none', log_target=True).mean()


@TRANSFER_STRATEGIES.register_module()
class CDC(FinetuneAll):
    """Finetune all weights with CDC's cross-domain distance consistency loss (``loss_cdc``).

    Args:
        source_checkpoint: the source synthesizer checkpoint.
        weight: weight of the loss (1000).
        feature_layers: generator feature levels (names, or indices into the generator's
            ``feature_levels()``) to draw the level from; None = all.
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    needs_generator_features = True

    def __init__(self, source_checkpoint=None, weight=1000.0, feature_layers=None, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        self.weight = weight
        self.feature_layers = None if feature_layers is None else list(feature_layers)
        self.source_generator = None

    def adapt(self, synth):
        self.source_generator = self.frozen_copy(unwrap(synth.generator))

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        seg = inputs['seg']
        b = seg.shape[0]
        if b < 2:
            raise ValueError(f'CDC compares samples within a batch and needs batch size >= 2 '
                             f'(the paper uses 4), got {b}; raise train_dataloader.batch_size.')
        if feats is None:
            raise ValueError('CDC reads the generator features of the training step; the '
                             'synthesizer did not pass them (needs_generator_features).')
        source = self.source_generator
        source.train(unwrap(synth.generator).training)
        with torch.no_grad():
            _, src_feats = source(seg, z, return_features=True)
        layers = resolve_levels(self.feature_layers, feats.keys(), 'CDC feature_layers')
        k = layers[int(torch.randint(len(layers), ()))]
        return dict(loss_cdc=self.weight * cdc_distance_loss(src_feats[k], feats[k]))
