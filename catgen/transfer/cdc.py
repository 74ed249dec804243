"""CDC: cross-domain correspondence (Ojha et al., CVPR 2021).

Finetune everything, and make the adapted generator keep the source generator's *relative*
similarities between samples: for a batch of inputs, at a randomly chosen generator layer, the
cosine similarity of sample i's flattened feature map with every other sample's is turned into a
distribution by a softmax over the others (no temperature), for the frozen source generator and
for the adapted one; the loss is

    loss_cdc = weight * KL(p_source || p_adapted)      (weight 1000)

with mean reduction over all B * (B - 1) entries (``nn.KLDivLoss(reduction='mean')``, as the
official code). Both generators get the same label maps and the same noise z. Batch 4 (the
configs'). Plus the anchor-region scheme: ``num_anchors`` (10) fixed anchor noises; every
``anchor_interval``-th iteration (4; iterations 0, 4, 8, ...) the step's noise is drawn near a
random anchor (``anchor + anchor_std * N(0, I)``, std 0.1) and the ordinary (image-level)
discriminator loss is used; on the other iterations ordinary noise and a patch-level
discriminator.

catgen's choices:

- The source generator (the anchor of the loss, ``transfer.source_generator``) is the REAL source
  model (:mod:`catgen.transfer.source_anchor`): the loaded source generator when the label
  spaces match, else the source generator reading ``A^T y_t`` through an affinity matrix given
  as CAT's (``affinity`` / ``affinity_file``); ``anchor='reinit_copy'`` keeps catgen's earlier
  copy with re-initialised class channels. It runs in the adapted generator's train/eval mode.
- Loading as :class:`~catgen.transfer.finetune_all.FinetuneAll` (class channels restarted,
  everything trains). The adapted generator's features come from the training step's one
  generator forward (``needs_generator_features``); the source generator runs once, without
  gradients, on the same label maps and noise.
- One level per step, drawn uniformly (torch's global RNG, seeded by the runner) from
  ``feature_layers``: default ``'inner'`` = levels ``1 .. n-2`` of the generator's
  ``feature_levels()`` (the official code draws from ``[1, n_latent - 2]``: neither the first nor
  the last); with fewer than 3 levels it falls back to all (logged); or names / indices; None =
  all.
- The patch-level discriminator on OASIS's per-pixel (N+1 segmentation) discriminator: a
  :class:`~catgen.models.discriminators.patch_head.PatchHead` (3x3 conv -> 1 channel) owned by
  the strategy reads one intermediate discriminator feature level (``patch_level``; default:
  the first level, in forward order, whose resolution is nearest 1/8 of the image's, as the
  official 32x32 level of a 256 image), with the non-saturating logistic loss of the official
  StyleGAN2 code on its patch logits: D: ``softplus(l(fake)) + softplus(-l(real))``, G:
  ``softplus(-l(fake))``, means over patches (``loss_cdc_patch_d`` / ``loss_cdc_patch_g``, times
  ``patch_weight``). It trains with the discriminator's optimizer (the discriminator trunk below
  that level gets its gradient too, as the official code); in the generator step it is frozen.
  On anchor iterations the ordinary OASIS loss is the image-level loss. ``patch_loss``:
  ``'add'`` (default): on patch iterations the OASIS loss stays and the patch loss is added.
  OASIS's loss is the only CONDITIONAL signal (it scores each pixel against its class); the
  official CDC generator is unconditional, where a patch-level real/fake loss alone is complete.
  Dropping the segmentation loss on 3 of 4 iterations would drop label-map alignment there.
  ``'replace'`` (the official alternation): on patch iterations only the patch loss; needs a
  synthesizer that honours :meth:`~catgen.transfer.base.TransferStrategy.family_loss_weight`
  (``OASISSynthesizer`` does).
  The head is not DDP-wrapped: under several processes its gradients are not averaged.
- Generators without noise (``z_dim = 0``): no anchor noise (logged); the image-level/patch-level
  alternation still runs. ``anchor_interval=0`` switches the whole scheme off (ordinary noise and
  the OASIS loss on every iteration).
- Needs a batch of at least 2 (the similarities are between samples); the paper uses 4.
"""
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.models.synthesizers.base_synthesizer import frozen, unwrap
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll
from .source_anchor import SourceAnchorMixin


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


def inner_levels(levels):
    """Levels ``1 .. n-2`` of ``levels`` (neither the first nor the last), CDC's default."""
    levels = list(levels)
    return levels[1:-1]


def nearest_level(shapes, target_size):
    """The first level (in order) whose ``h * w`` is nearest ``target_size[0] * target_size[1]``.

    Args:
        shapes: ``{level: (h, w)}`` in forward order.
        target_size: ``(h, w)``.
    """
    want = target_size[0] * target_size[1]
    return min(shapes, key=lambda k: abs(shapes[k][0] * shapes[k][1] - want))


@TRANSFER_STRATEGIES.register_module()
class CDC(SourceAnchorMixin, FinetuneAll):
    """Finetune all weights with CDC's cross-domain distance consistency loss (``loss_cdc``),
    its anchor noises and its patch-level discriminator.

    Args:
        source_checkpoint: the source synthesizer checkpoint.
        weight: weight of the loss (1000).
        feature_layers: generator feature levels to draw the level from: ``'inner'`` (default:
            levels 1 .. n-2 of ``feature_levels()``), names or indices, or None (all).
        anchor: the source generator to compare with: None (``'source'`` when the label spaces
            match, else ``'affinity'``), ``'source'``, ``'affinity'`` or ``'reinit_copy'``
            (see :mod:`catgen.transfer.source_anchor`).
        affinity: affinity estimator config for the ``'affinity'`` anchor (as CAT's).
        affinity_file: a saved affinity matrix (``.json``) instead.
        target_classes, source_classes, target_dataset, source_dataset: the class names and
            data for the affinity, as CAT's (``target_dataset`` is filled in by the tools).
        num_anchors: number of fixed anchor noises (10).
        anchor_interval: every this-many iterations (iteration % anchor_interval == 0) is an
            anchor iteration (4); 0 disables the anchor / patch scheme.
        anchor_std: std of the noise around an anchor (0.1).
        anchor_seed: seed of the anchor noises (drawn once at set-up; saved in checkpoints).
        patch_level: discriminator feature level of the patch head (a name, or an index into
            the discriminator's ``feature_levels()``); None = nearest 1/8 of the image size.
        patch_loss: ``'add'`` (OASIS loss plus the patch loss on patch iterations) or
            ``'replace'`` (only the patch loss there; needs a synthesizer that honours
            ``family_loss_weight``).
        patch_weight: weight of the patch losses (1).
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    needs_generator_features = True

    def __init__(self, source_checkpoint=None, weight=1000.0, feature_layers='inner',
                 anchor=None, affinity=None, affinity_file=None, target_classes=None,
                 source_classes=None, target_dataset=None, source_dataset=None, num_anchors=10,
                 anchor_interval=4, anchor_std=0.1, anchor_seed=0, patch_level=None,
                 patch_loss='add', patch_weight=1.0, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        if patch_loss not in ('add', 'replace'):
            raise ValueError(f"CDC: patch_loss must be 'add' or 'replace', got {patch_loss!r}")
        if int(anchor_interval) < 0 or int(num_anchors) < 1:
            raise ValueError(f'CDC: anchor_interval must be >= 0 (0: no anchor scheme) and '
                             f'num_anchors >= 1; got {anchor_interval}, {num_anchors}')
        self.weight = weight
        self.feature_layers = (feature_layers if feature_layers in (None, 'inner')
                               else list(feature_layers))
        self.init_source_anchor(anchor=anchor, affinity=affinity, affinity_file=affinity_file,
                                target_classes=target_classes, source_classes=source_classes,
                                target_dataset=target_dataset, source_dataset=source_dataset)
        self.num_anchors = int(num_anchors)
        self.anchor_interval = int(anchor_interval)
        self.anchor_std = float(anchor_std)
        self.anchor_seed = int(anchor_seed)
        self.patch_level = patch_level
        self.patch_loss = patch_loss
        self.patch_weight = float(patch_weight)
        self.register_buffer('anchors', None)  # Tensor[num_anchors, z_dim] after set-up
        self.patch_head = None    # PatchHead after set-up
        self.patch_level_name = None
        self._iteration = None
        self._fallback_logged = False

    # ------------------------------------------------------------------ set-up
    def adapt(self, synth):
        super().adapt(synth)  # the source anchor
        if not self.anchor_interval:
            self.logger.info('CDC: anchor_interval=0: no anchor noises, no patch-level '
                             'discriminator (the OASIS loss on every iteration).')
            return
        z_dim = int(getattr(unwrap(synth.generator), 'z_dim', 0) or 0)
        if z_dim:
            gen = torch.Generator().manual_seed(self.anchor_seed)
            device = next(unwrap(synth.generator).parameters()).device
            self.anchors = torch.randn(self.num_anchors, z_dim, generator=gen).to(device)
        else:
            self.logger.info('CDC: the generator takes no noise (z_dim=0): anchor noises do not '
                             'apply and are skipped; the image-level / patch-level alternation '
                             'still runs.')
        if synth.discriminator is None:
            raise ValueError('CDC\'s patch-level discriminator needs model.discriminator; '
                             'set anchor_interval=0 to run without the anchor scheme.')
        if self.patch_loss == 'replace' and not getattr(synth, 'honours_family_loss_weight',
                                                        False):
            raise ValueError(
                f"CDC: patch_loss='replace' drops the synthesizer's own adversarial loss on patch "
                f'iterations, but {type(synth).__name__} does not honour '
                f'TransferStrategy.family_loss_weight (honours_family_loss_weight is not True). '
                f"Use patch_loss='add' (the OASIS loss plus the patch loss).")
        self.build_patch_head(synth)

    @torch.no_grad()
    def build_patch_head(self, synth):
        """Probe the discriminator once (eval mode, zeros) for its feature shapes; build the
        :class:`PatchHead` on ``patch_level``."""
        from catgen.models.discriminators.patch_head import PatchHead
        disc = unwrap(synth.discriminator)
        size = unwrap(synth.generator).output_size or (256, 256)
        dp = synth.data_preprocessor
        channels = int(getattr(dp, 'num_classes', None) or disc.num_classes) + int(
            getattr(dp, 'extra_label_channels', 0) or 0)
        p = next(disc.parameters())
        was_training = disc.training
        disc.eval()
        try:
            _, feats = disc(p.new_zeros(1, 3, *size), p.new_zeros(1, channels, *size),
                            return_features=True)
        finally:
            disc.train(was_training)
        if self.patch_level is None:
            shapes = {k: tuple(v.shape[-2:]) for k, v in feats.items()}
            name = nearest_level(shapes, (size[0] // 8, size[1] // 8))
        else:
            name = resolve_levels([self.patch_level], disc.feature_levels(), 'CDC patch_level')[0]
        self.patch_level_name = name
        self.patch_head = PatchHead(feats[name].shape[1]).to(p.device)
        self.logger.info(f'CDC: patch-level discriminator = 3x3 conv head on discriminator '
                         f'level {name} ({tuple(feats[name].shape[1:])} for a {size} image); '
                         f"patch_loss='{self.patch_loss}'")

    def optim_params(self, synth, part):
        params = super().optim_params(synth, part)
        if part == 'discriminator' and self.patch_head is not None:
            params = params + list(self.patch_head.parameters())
        return params

    # ------------------------------------------------------------------ the schedule
    def before_train_iter(self, runner, synth, iteration):
        super().before_train_iter(runner, synth, iteration)
        self._iteration = int(iteration)

    def current_iteration(self):
        """The training iteration (the TransferHook's; else the message hub's 'iter')."""
        if self._iteration is not None:
            return self._iteration
        return int(MessageHub.get_current_instance().get_info('iter', 0))

    def is_anchor_iteration(self, iteration=None):
        """Whether ``iteration`` (default: the current one) uses anchor noise and the
        image-level loss."""
        if not self.anchor_interval:
            return False
        it = self.current_iteration() if iteration is None else int(iteration)
        return it % self.anchor_interval == 0

    def uses_patch_head(self, iteration=None):
        """Whether ``iteration`` (default: the current one) uses the patch-level head."""
        return self.patch_head is not None and not self.is_anchor_iteration(iteration)

    def generator_noise(self, synth, inputs):
        """On anchor iterations: per sample a random anchor plus ``anchor_std * N(0, I)``,
        ``Tensor[B, z_dim]``; else None (ordinary noise)."""
        if self.anchors is None or not self.is_anchor_iteration():
            return None
        seg = inputs['seg']
        b = seg.shape[0]
        idx = torch.randint(self.num_anchors, (b,), device=self.anchors.device)
        z = self.anchors[idx] + self.anchor_std * torch.randn_like(self.anchors[idx])
        return z.to(device=seg.device, dtype=seg.dtype)

    def family_loss_weight(self, part):
        if self.patch_loss == 'replace' and self.uses_patch_head():
            return 0.0
        return super().family_loss_weight(part)

    # ------------------------------------------------------------------ losses
    def patch_logits(self, synth, img, seg):
        """The patch head's logits ``Tensor[B, 1, h, w]`` on the discriminator's features."""
        _, feats = synth.discriminator(img, seg, return_features=True)
        return self.patch_head(feats[self.patch_level_name])

    def discriminator_losses(self, synth, inputs, fake, z=None):
        """Patch iterations: ``loss_cdc_patch_d = patch_weight * (softplus(l(fake)) +
        softplus(-l(real)))`` (means over patches); ``fake`` is detached."""
        if not self.uses_patch_head():
            return {}
        seg, real = inputs['seg'], inputs['img']
        b = seg.shape[0]
        logits = self.patch_logits(synth, torch.cat([fake, real]), torch.cat([seg, seg]))
        lf, lr = logits.split(b)
        loss = F.softplus(lf).mean() + F.softplus(-lr).mean()
        return dict(loss_cdc_patch_d=self.patch_weight * loss)

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        seg = inputs['seg']
        b = seg.shape[0]
        if b < 2:
            raise ValueError(f'CDC compares samples within a batch and needs batch size >= 2 '
                             f'(the paper uses 4), got {b}; raise train_dataloader.batch_size.')
        if feats is None:
            raise ValueError('CDC reads the generator features of the training step; the '
                             'synthesizer did not pass them (needs_generator_features).')
        _, src_feats = self.source_forward(synth, seg, z, return_features=True)
        k = self.draw_level(feats.keys())
        losses = dict(loss_cdc=self.weight * cdc_distance_loss(src_feats[k], feats[k]))
        if self.uses_patch_head():
            with frozen(self.patch_head):  # trained by the discriminator's optimizer only
                logits = self.patch_logits(synth, fake, seg)
            losses['loss_cdc_patch_g'] = self.patch_weight * F.softplus(-logits).mean()
        return losses

    def candidate_levels(self, available):
        """The levels a step draws from (see ``feature_layers``)."""
        available = list(available)
        if self.feature_layers == 'inner':
            inner = inner_levels(available)
            if inner:
                return inner
            if not self._fallback_logged:
                self._fallback_logged = True
                self.logger.warning(f'CDC: the generator has {len(available)} feature levels '
                                    f'{available}; levels 1 .. n-2 are empty, so all are used.')
            return available
        return resolve_levels(self.feature_layers, available, 'CDC feature_layers')

    def draw_level(self, available):
        """One level drawn uniformly from :meth:`candidate_levels`."""
        layers = self.candidate_levels(available)
        return layers[int(torch.randint(len(layers), ()))]
