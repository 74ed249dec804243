"""SIS-UG: semantic image synthesis with an unconditional generator (Chae et al., NeurIPS 2023).

A pretrained unconditional StyleGAN2 (the prior, frozen) becomes a label-to-image model with a
few labelled images and no image-label training pairs for the generator itself:

1. **proxy masks** (:meth:`SISUGSynthesizer.fit_proxy_masks`, run once by the
   ``ProxyMaskHook``): spherical k-means of the prior's normalised features at
   ``proxy_resolution`` over ``kmeans.num_samples`` random samples; the ``k`` centres are kept
   in the checkpoint; any sample's proxy mask is the nearest centre of each pixel
   (:mod:`catgen.models.proxy_masks`);
2. **rearranger** (``train_part='rearranger'``, self-supervised, no labels): per step random
   samples ``w`` -> the prior's state at ``proxy_resolution`` (features and RGB skip) -> the
   :class:`~catgen.models.rearrangers.FeatureRearranger` moves them to a target proxy mask ->
   the prior renders the rest. Losses (what the paper leaves open is catgen's documented
   default, docs/sis_ug.md):

   - ``loss_rec``: target = the sample's own mask, or its mirror image (probability
     ``flip_prob``; then the truth is the mirrored state): L1 to the (mirrored) features and
     RGB skip;
   - ``loss_mask``: target = another sample's mask: a hinge on the output's cosines to the
     centres, ``relu(max_other cos - cos_target + mask_margin)`` (0.02), which stops pulling a
     vector once its cluster wins by the margin; ``mask_margin=None`` takes the cross-entropy
     of ``cos / temperature`` instead, which keeps pulling every vector towards its centre,
     i.e. towards the cluster's average appearance (measured worse, docs/sis_ug.md);
   - ``loss_style``: the same pair: per cluster present in both masks, the output's mean
     features (and RGB) inside the target region match the source's inside its own region
     (MSE, weight 10): the source's appearance, the target's layout;
3. **semantic mapper** (``train_part='mapper'``, the only labelled part): the few labelled
   images are inverted into the prior (:meth:`prepare_pseudo_labels`, run by the
   ``PriorInversionHook``, cached), their proxy masks are the targets; the
   :class:`~catgen.models.mappers.SemanticMapper` learns user mask -> proxy mask by
   cross-entropy (random horizontal flips); the rearranger (from ``rearranger_checkpoint``)
   is frozen;
4. **inference** (:meth:`synthesize`): user mask -> mapper -> proxy mask -> the rearranged
   state of a random sample (one per sample id; with ``source_candidates`` M > 1 the best
   covering of M; or of given latents: :meth:`edit` inverts a real image first) -> image.

User masks (``mapper_input``): ``'seg'`` one-hot label maps; ``'scribble'`` the scribbles of
``SimulateScribbles`` (one-hot, zero where unlabelled); ``'edge'`` an edge sketch, the
boundaries of the label map (1 channel).
"""
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.models.proxy_masks import (assign_proxy_masks, feature_vectors, fit_kmeans,
                                       proxy_logits)
from catgen.registry import MODELS
from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load

from .base_synthesizer import unwrap
from .prior_synthesizer import PriorSynthesizer

PARTS = ('rearranger', 'mapper')
MAPPER_INPUTS = ('seg', 'scribble', 'edge')
DEFAULT_LOSSES = dict(rec=1.0, mask=1.0, style=10.0, flip_prob=0.5, temperature=0.1,
                      mask_margin=0.02)


def label_edges(labels, ignore_index=255):
    """Edge sketch of label maps: int Tensor[B, H, W] -> float Tensor[B, 1, H, W], 1 where a
    4-neighbour has another label (unlabelled pixels are neither edges nor make them)."""
    lab = labels.long()
    valid = lab != ignore_index
    edge = torch.zeros_like(lab, dtype=torch.bool)
    dy = (lab[:, 1:] != lab[:, :-1]) & valid[:, 1:] & valid[:, :-1]
    dx = (lab[:, :, 1:] != lab[:, :, :-1]) & valid[:, :, 1:] & valid[:, :, :-1]
    edge[:, 1:] |= dy
    edge[:, :-1] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge[:, None].float()


def region_means(values, masks, k):
    """Per-cluster mean of ``values`` Tensor[B, V, h, w] under int ``masks`` [B, h, w]:
    ``(means Tensor[B, k, V], counts Tensor[B, k])``."""
    b, v = values.shape[:2]
    onehot = F.one_hot(masks.long(), k).flatten(1, 2).float()  # [B, hw, k]
    counts = onehot.sum(1)
    sums = torch.einsum('bvn,bnk->bkv', values.flatten(2), onehot)
    return sums / counts.clamp(min=1)[..., None], counts


@MODELS.register_module()
class SISUGSynthesizer(PriorSynthesizer):
    """Proxy masks + feature rearranger + semantic mapper on a frozen StyleGAN2 (module doc).

    Args:
        prior: config of the prior (``StyleGAN2Generator``).
        rearranger: config of the rearranger (``FeatureRearranger``); ``num_clusters``,
            ``feature_channels`` and ``value_channels`` default to the synthesizer's.
        mapper: config of the semantic mapper (``SemanticMapper``); ``in_channels``,
            ``num_clusters``, ``input_size`` and ``output_size`` default to the synthesizer's.
        prior_checkpoint: the prior's weights (:class:`PriorSynthesizer`).
        proxy_resolution: the prior's level (its last StyledConv at this resolution) that is
            clustered and rearranged.
        num_clusters: k of the proxy masks.
        kmeans: ``num_samples`` (random samples clustered, 256), ``iters`` (50), ``seed`` (0).
        train_part: ``'rearranger'`` (stage 1, self-supervised) or ``'mapper'`` (stage 2, the
            labelled pairs).
        rearranger_checkpoint: stage 2: a stage-1 checkpoint whose rearranger and proxy-mask
            centres are loaded (and frozen); None in stage 1 and for inference.
        mapper_input: ``'seg'``, ``'scribble'`` or ``'edge'`` (module doc).
        losses: the rearranger's loss weights and options, merged into
            ``dict(rec=1, mask=1, style=10, flip_prob=0.5, temperature=0.1,
            mask_margin=0.02)`` (module doc).
        truncation: psi of the random sources at inference (1: off).
        source_candidates: random sources drawn per sample at inference, the one whose proxy
            mask best covers the target's clusters kept (1: the paper's single random source;
            catgen's option, :meth:`choose_sources`).
        inversion: options of the inversion of labelled images and edited images.
        latent_avg_samples: see :class:`PriorSynthesizer`.
        **kwargs: :class:`PriorSynthesizer` (``data_preprocessor``, ``eval_seed``,
            ``num_eval_samples``).
    """

    method = 'SIS-UG'

    def __init__(self, prior, rearranger, mapper, prior_checkpoint=None, proxy_resolution=16,
                 num_clusters=16, kmeans=None, train_part='rearranger',
                 rearranger_checkpoint=None, mapper_input='seg', losses=None, truncation=1.0,
                 source_candidates=1, inversion=None, latent_avg_samples=4096, **kwargs):
        if train_part not in PARTS:
            raise ValueError(f'train_part must be one of {PARTS}, got {train_part!r}')
        if mapper_input not in MAPPER_INPUTS:
            raise ValueError(f'mapper_input must be one of {MAPPER_INPUTS}, got '
                             f'{mapper_input!r}')
        super().__init__(prior, prior_checkpoint=prior_checkpoint, inversion=inversion,
                         latent_avg_samples=latent_avg_samples, **kwargs)
        gen = self.generator
        self.feature_layers = self.levels_at(proxy_resolution)
        self.proxy_resolution = int(proxy_resolution)
        self.num_clusters = int(num_clusters)
        channels = gen.channels[self.proxy_resolution]
        self.kmeans = {**dict(num_samples=256, iters=50, seed=0), **(kmeans or {})}
        unknown = set(self.kmeans) - {'num_samples', 'iters', 'seed'}
        if unknown:
            raise ValueError(f'unknown kmeans options {sorted(unknown)}')
        self.train_part = train_part
        self.mapper_input = mapper_input
        self.losses = {**DEFAULT_LOSSES, **(losses or {})}
        unknown = set(self.losses) - set(DEFAULT_LOSSES)
        if unknown:
            raise ValueError(f'unknown SIS-UG losses {sorted(unknown)}; known: '
                             f'{sorted(DEFAULT_LOSSES)}')
        if not 0 < float(truncation) <= 1:
            raise ValueError(f'truncation must be in (0, 1], got {truncation}')
        self.truncation = float(truncation)
        if int(source_candidates) < 1:
            raise ValueError(f'source_candidates must be >= 1, got {source_candidates}')
        self.source_candidates = int(source_candidates)
        if isinstance(rearranger, dict):
            rearranger = dict(rearranger)
            rearranger.setdefault('num_clusters', self.num_clusters)
            rearranger.setdefault('feature_channels', channels)
            rearranger.setdefault('value_channels', 3)
            rearranger = MODELS.build(rearranger)
        if (rearranger.num_clusters != self.num_clusters or
                rearranger.feature_channels != channels or rearranger.value_channels != 3):
            raise ValueError(f'the rearranger must take {self.num_clusters} clusters, {channels} '
                             'feature channels (the prior at the proxy resolution) and 3 value '
                             'channels (the RGB skip)')
        self.rearranger = rearranger
        num_classes = getattr(self.data_preprocessor, 'num_classes', None)
        if isinstance(mapper, dict):
            mapper = dict(mapper)
            mapper.setdefault('in_channels', 1 if mapper_input == 'edge' else num_classes)
            mapper.setdefault('num_clusters', self.num_clusters)
            mapper.setdefault('input_size', gen.size)
            mapper.setdefault('output_size', self.proxy_resolution)
            mapper = MODELS.build(mapper)
        if mapper.num_clusters != self.num_clusters or \
                mapper.output_size != self.proxy_resolution:
            raise ValueError(f'the mapper must output {self.num_clusters} clusters at '
                             f'{self.proxy_resolution} px')
        self.mapper = mapper
        self.register_buffer('centres', torch.zeros(self.num_clusters, channels))
        # set by prepare_pseudo_labels (stage 2; not in checkpoints)
        self.register_buffer('pair_inputs', torch.zeros(0), persistent=False)
        self.register_buffer('pair_masks', torch.zeros(0, dtype=torch.long), persistent=False)
        self.prepared = False
        self.rearranger_checkpoint = rearranger_checkpoint
        if rearranger_checkpoint is not None:
            self._load_stage1(rearranger_checkpoint)
        if train_part == 'mapper':
            self.rearranger.requires_grad_(False)

    # ------------------------------------------------------------------ set-up
    def _load_stage1(self, checkpoint):
        what = f'SIS-UG rearranger checkpoint {checkpoint}'
        try:
            raw = safe_load(checkpoint, map_location='cpu')
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'{err} Stage 2 of SIS-UG (the mapper) starts from the rearranger stage: train '
                'configs/sis-ug/sis-ug_rearranger_synthscenes-source.py first (docs/sis_ug.md) '
                'and point rearranger_checkpoint at its iter_<n>.pth.') from err
        state = read_state_dict(raw, what=what)
        if 'centres' not in state:
            raise KeyError(f'{what} has no proxy-mask centres: not a SIS-UG checkpoint')
        load_state_dict_checked(self.rearranger,
                                read_state_dict(state, prefix='rearranger.', what=what),
                                source=what)
        if state['centres'].shape != self.centres.shape:
            raise ValueError(f'{what}: centres {tuple(state["centres"].shape)}, the config '
                             f'needs {tuple(self.centres.shape)} (num_clusters, channels)')
        self.centres.copy_(state['centres'])

    @property
    def fitted(self):
        """Whether the proxy-mask centres exist (fitted, or loaded from a checkpoint)."""
        return bool(self.centres.abs().sum() > 0)

    def train(self, mode=True):
        """Only the trained part follows ``mode``; the prior (and the frozen rearranger in
        stage 2) stay in eval mode."""
        super().train(mode)
        if self.train_part == 'mapper':
            self.rearranger.eval()
        return self

    def optim_params(self, part):
        if part != self.train_part:
            raise ValueError(f"SIS-UG with train_part={self.train_part!r} trains only that part: "
                             f"optim_wrapper must have one entry, {self.train_part!r}, not "
                             f"{part!r}")
        return unwrap(getattr(self, part)).parameters()

    # ------------------------------------------------------------------ proxy masks
    def sample_latents(self, n, generator=None, device=None, truncation=1.0):
        """``n`` random w's Tensor[n, D] (z from ``generator``, a CPU torch.Generator, or the
        global RNG; truncated towards ``latent_avg`` with psi ``truncation``)."""
        gen = self.generator
        device = device or self.latent_avg.device
        z = torch.randn(n, gen.style_dim, generator=generator).to(device)
        w = gen.get_latent(z)
        if truncation < 1:
            w = self.latent_avg + truncation * (w - self.latent_avg)
        return w

    def state(self, w, noise=None):
        """The prior's state at the proxy resolution: ``(features Tensor[B, C, r, r], RGB skip
        Tensor[B, 3, r, r])`` of latents ``w``."""
        return self.generator.synthesis_until(w, self.proxy_resolution, noise=noise)

    @torch.no_grad()
    def fit_proxy_masks(self, progress=False):
        """Fit the k-means centres on ``kmeans.num_samples`` random samples (seeded); returns
        ``dict(mean_cosine, iterations, vectors)``."""
        gen = torch.Generator().manual_seed(int(self.kmeans['seed']))
        n = int(self.kmeans['num_samples'])
        vectors = []
        for start in range(0, n, 64):
            w = self.sample_latents(min(64, n - start), gen)
            noise = self.generator.draw_noise(w.shape[0], gen)
            feats, _ = self.state(w, noise)
            vectors.append(feature_vectors(feats))
        vectors = torch.cat(vectors)
        centres, cos, iters = fit_kmeans(vectors, self.num_clusters, int(self.kmeans['iters']),
                                         seed=int(self.kmeans['seed']))
        self.centres.copy_(centres)
        return dict(mean_cosine=cos, iterations=iters, vectors=int(vectors.shape[0]))

    def proxy_masks(self, feats):
        """Proxy masks of features at the proxy level: int64 Tensor[B, r, r]."""
        self._check_fitted()
        return assign_proxy_masks(feats, self.centres)

    def pseudo_labels(self, feats, size=None):
        """Proxy masks upsampled (nearest) to ``size`` (the ``PriorInversionHook``'s pictures)."""
        masks = self.proxy_masks(feats)
        if size is None:
            return masks
        return F.interpolate(masks[:, None].float(), size=tuple(size), mode='nearest')[:, 0].long()

    def _check_fitted(self):
        if not self.fitted:
            raise RuntimeError('SIS-UG has no proxy-mask centres yet: training runs the '
                               'ProxyMaskHook first (custom_hooks of the config), a stage-2 '
                               'config loads them with rearranger_checkpoint, or call '
                               'model.fit_proxy_masks().')

    # ------------------------------------------------------------------ rearranging
    def rearrange(self, w, target, noise=None, return_state=False):
        """Images of latents ``w`` whose state at the proxy level is rearranged to ``target``
        (int Tensor[B, r, r] or soft Tensor[B, k, r, r]): Tensor[B, 3, S, S]."""
        feats, skip = self.state(w, noise)
        source = self.proxy_masks(feats)
        out, out_skip, _ = self.rearranger(feats, source, target, skip)
        img = self.generator.synthesis_from(out, out_skip, w, self.proxy_resolution, noise)
        return (img, out) if return_state else img

    def rearranger_losses(self, feats, skip):
        """The stage-1 losses of a batch of source states (module doc) and the mask accuracy."""
        opts = self.losses
        k = self.num_clusters
        source = self.proxy_masks(feats)
        b = feats.shape[0]
        out = {}
        # 1. own mask, mirrored with probability flip_prob: the truth is known
        flip = torch.rand(b, device=feats.device) < float(opts['flip_prob'])

        def mirror(x):
            return torch.where(flip.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)

        rec_feats, rec_skip, _ = self.rearranger(feats, source, mirror(source), skip)
        out['loss_rec'] = float(opts['rec']) * (
            F.l1_loss(rec_feats, mirror(feats)) + F.l1_loss(rec_skip, mirror(skip)))
        # 2. another sample's mask: mask and style terms
        target = source.roll(1, 0) if b > 1 else source.flip(-1)
        new_feats, new_skip, _ = self.rearranger(feats, source, target, skip)
        logits = proxy_logits(new_feats, self.centres, float(opts['temperature']))
        if opts['mask_margin'] is None:
            mask_loss = F.cross_entropy(logits, target)
        else:
            cos = logits * float(opts['temperature'])
            own = cos.gather(1, target[:, None])[:, 0]
            other = cos.scatter(1, target[:, None], -2.0).max(1)[0]
            mask_loss = F.relu(other - own + float(opts['mask_margin'])).mean()
        out['loss_mask'] = float(opts['mask']) * mask_loss
        values_src = torch.cat([feats, skip], 1)
        values_new = torch.cat([new_feats, new_skip], 1)
        mean_src, n_src = region_means(values_src, source, k)
        mean_new, n_new = region_means(values_new, target, k)
        both = ((n_src > 0) & (n_new > 0)).float()[..., None]
        style = ((mean_new - mean_src) ** 2 * both).sum() / (both.sum() * values_src.shape[1])
        out['loss_style'] = float(opts['style']) * style
        accuracy = (logits.argmax(1) == target).float().mean()
        return out, accuracy

    # ------------------------------------------------------------------ the semantic mapper
    def mapper_input_from_labels(self, labels):
        """The mapper's input of int label maps (dense, or scribbles with ``ignore_index``):
        Tensor[B, C or 1, H, W]."""
        pre = self.data_preprocessor
        if self.mapper_input == 'edge':
            return label_edges(labels, pre.ignore_index)
        return pre.one_hot(labels)

    def conditioning(self, inputs):
        """``(labels, mapper input)``: the scribbles in ``'scribble'`` mode (the dense map stays
        the metrics' ground truth), the label map otherwise."""
        labels = inputs.get('label')
        if self.mapper_input == 'scribble':
            if 'scribbles' not in inputs:
                raise KeyError("SIS-UG with mapper_input='scribble' needs inputs['scribbles']: "
                               'put SimulateScribbles in the pipeline.')
            labels = inputs['scribbles']
        if labels is None:
            return None, inputs['seg']
        return labels, self.mapper_input_from_labels(labels)

    @torch.no_grad()
    def prepare_pseudo_labels(self, images, labels, cache_file=None, progress=True):
        """Stage 2: invert the labelled images; their proxy masks are the mapper's targets.

        Args:
            images: float Tensor[N, 3, S, S] in [-1, 1] at the prior's size.
            labels: int64 Tensor[N, S, S]: label maps (or scribbles).
            cache_file: the inversion's cache, or None.
            progress: progress bar of the inversion.

        Returns:
            dict: ``latents``, ``mse`` Tensor[N], ``reconstructions``, ``from_cache`` and
            ``proxy_masks`` int Tensor[N, r, r].
        """
        self._check_fitted()
        latents, mse, from_cache = self.invert_cached(images, cache_file, progress)
        noise = self.stored_noise()
        feats, _ = self.state(latents, noise)
        masks = self.proxy_masks(feats)
        self.pair_inputs = self.mapper_input_from_labels(labels.to(masks.device))
        self.pair_masks = masks
        self.prepared = True
        recon = self.generator(None, latents, noise=noise, input_is_latent=True)
        return dict(latents=latents, mse=mse, reconstructions=recon, from_cache=from_cache,
                    proxy_masks=masks)

    def mapper_loss(self, inputs, masks):
        """Cross-entropy of the mapper's logits of ``inputs`` against proxy ``masks``, and its
        accuracy."""
        logits = self.mapper(inputs)
        return F.cross_entropy(logits, masks), (logits.argmax(1) == masks).float().mean()

    # ------------------------------------------------------------------ training
    def train_step(self, data, optim_wrapper):
        """Stage 1: one rearranger update on a batch of random samples; stage 2: one mapper
        update on a batch of the labelled pairs (random horizontal flips). ``B`` is the
        loader's batch size (the loader yields the labelled shots)."""
        self._check_fitted()
        inputs = self.training_inputs(data)
        b = inputs['seg'].shape[0]
        wrapper = optim_wrapper[self.train_part]
        hub = MessageHub.get_current_instance()
        if self.train_part == 'rearranger':
            with torch.no_grad():
                w = self.sample_latents(b)
                feats, skip = self.state(w, self.generator.draw_noise(b))
            with wrapper.optim_context(self.rearranger):
                losses, accuracy = self.rearranger_losses(feats, skip)
            hub.update_scalar('train/mask_accuracy', float(accuracy))
        else:
            if not self.prepared:
                raise RuntimeError('SIS-UG stage 2 has no labelled pairs yet: the config needs '
                                   'the PriorInversionHook (custom_hooks), or call '
                                   'model.prepare_pseudo_labels(images, labels).')
            device = self.pair_masks.device
            idx = torch.randint(len(self.pair_masks), (b,), device=device)
            x, m = self.pair_inputs[idx], self.pair_masks[idx]
            flip = torch.rand(b, device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            m = torch.where(flip[:, None, None], m.flip(-1), m)
            with wrapper.optim_context(self.mapper):
                loss, accuracy = self.mapper_loss(x, m)
            losses = dict(loss_mapper=loss)
            hub.update_scalar('train/mapper_accuracy', float(accuracy))
        total, log_vars = self.parse_losses(losses)
        if self._check_finite(losses):
            wrapper.update_params(total)
        else:
            wrapper.zero_grad()
        return {k: v.detach() if torch.is_tensor(v) else v for k, v in log_vars.items()}

    # ------------------------------------------------------------------ inference
    def map_masks(self, mapper_input):
        """The mapper's proxy masks of user masks: int Tensor[B, r, r]."""
        return self.mapper(mapper_input).argmax(1)

    @torch.no_grad()
    def synthesize(self, seg, z=None, sample_ids=None, latents=None):
        """User masks (the mapper's input, Tensor[B, C or 1, H, W]) -> images Tensor[B, 3, S, S].

        The source of sample ``i`` is the w of ``z`` (Tensor[B, D]), else of the noise of its
        sample id (a pure function of ``(eval_seed, id)``), else random; or ``latents``
        (Tensor[B, n_latent, D], e.g. an inverted real image: :meth:`edit`). With
        ``source_candidates`` M > 1 (and no ``z`` or ``latents``), each sample draws M sources
        (a pure function of ``(eval_seed, id)`` too) and keeps the one whose proxy mask shares
        the most area, cluster by cluster, with the target (:meth:`choose_sources`). The
        prior's stored noise maps are used.
        """
        target = self.map_masks(seg)
        noise = self.stored_noise()
        if latents is not None:
            w = latents
        elif z is None and self.source_candidates > 1:
            w = self.choose_sources(target, sample_ids, noise)
        else:
            if z is None:
                z = self.sample_noise(seg.shape[0], sample_ids, seg.device)
            w = self._truncate(self.generator.get_latent(z.to(self.latent_avg)))
        return self.rearrange(w, target, noise=noise)

    def _truncate(self, w):
        if self.truncation < 1:
            w = self.latent_avg + self.truncation * (w - self.latent_avg)
        return w

    def choose_sources(self, target, sample_ids=None, noise=None):
        """Per target proxy mask (int Tensor[B, r, r]), the best of ``source_candidates``
        random sources: the largest histogram intersection ``sum_c min(p_src(c), p_tgt(c))``
        of the cluster areas, i.e. the source that already has the most of what the target
        shows. Returns the chosen w's Tensor[B, D]."""
        b, m = target.shape[0], self.source_candidates
        ids = list(range(b)) if sample_ids is None else [int(i) for i in sample_ids]
        # candidate j of sample i: the noise of id (i, j), a pure function of (eval_seed, i, j)
        z = self.sample_noise(b * m, [i * 1_000_003 + 7_919 * (j + 1) for i in ids
                                      for j in range(m)], target.device)
        w = self._truncate(self.generator.get_latent(z.to(self.latent_avg)))
        feats, _ = self.state(w, noise)
        k = self.num_clusters
        hist = F.one_hot(self.proxy_masks(feats), k).flatten(1, 2).float().mean(1)
        want = F.one_hot(target, k).flatten(1, 2).float().mean(1)
        score = torch.minimum(hist.view(b, m, k), want[:, None]).sum(-1)
        best = score.argmax(1)
        return w.view(b, m, -1)[torch.arange(b, device=w.device), best]

    @torch.no_grad()
    def edit(self, images, labels, cache_file=None, progress=False):
        """Spatial editing of real images: invert ``images`` (Tensor[B, 3, S, S] in [-1, 1])
        into the prior, then rearrange them to the user masks of int ``labels`` [B, H, W].

        Returns:
            ``(edited Tensor[B, 3, S, S], reconstructions Tensor[B, 3, S, S])``.
        """
        latents, _, _ = self.invert_cached(images, cache_file, progress)
        recon = self.generator(None, latents, noise=self.stored_noise(), input_is_latent=True)
        seg = self.mapper_input_from_labels(labels.to(self.latent_avg.device))
        return self.synthesize(seg, latents=latents), recon
