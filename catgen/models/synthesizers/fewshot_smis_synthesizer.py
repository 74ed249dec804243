"""Fewshot-SMIS (Endo & Kanamori, CVPR 2021): label maps -> W+ -> a frozen StyleGAN2 prior.

With 1 to 5 labelled images and a StyleGAN2 trained on unlabelled images of the domain:

1. **inversion** (before training, :meth:`FewshotSMISSynthesizer.prepare_pseudo_labels`, run by
   the ``PriorInversionHook``): the labelled images are inverted into the prior's W+
   (:func:`~catgen.models.latent_inversion.invert_images`), cached in the work dir;
2. **pseudo labels**: the prior's features of the inverted images at ``feature_resolution``
   (64) give class prototypes (dense mode) or per-pixel support features (sparse mode,
   scribbles), :mod:`catgen.models.pseudo_labels`;
3. **training**: per step, ``z ~ N(0, I)``, ``w = mapping(z)``, the prior's features of ``w``
   -> a pseudo label map -> one-hot -> the pSp encoder -> ``w_hat = E(.) + w_avg``; loss
   ``MSE(w_hat, w)`` over every layer's w (the latent regression of the official code); only
   the encoder trains (Ranger, lr 1e-4, in the configs);
4. **inference**: label map (dense, or sparse with 255 = unlabelled) -> one-hot -> encoder ->
   W+ -> the prior. With ``multimodal=True`` the latents of layers ``multimodal_from`` onward
   (the fine layers: texture and colour) are replaced by those of a random sample, one per
   sample id (Fewshot-SMIS's multimodal results; the official code replaces 8-17 at 1024 px).

The prior is never trained: checkpoints hold it (for self-contained inference), the encoder and
the average latent.
"""
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.models.pseudo_labels import (class_prototypes, dense_pseudo_labels,
                                         sparse_pseudo_labels, support_features)
from catgen.registry import MODELS

from .base_synthesizer import unwrap
from .prior_synthesizer import PriorSynthesizer

MODES = ('dense', 'sparse')


@MODELS.register_module()
class FewshotSMISSynthesizer(PriorSynthesizer):
    """Semantic image synthesis by a pSp encoder into a frozen StyleGAN2 prior (module doc).

    Args:
        prior: config of the prior (``StyleGAN2Generator``; ``num_classes`` is not given).
        encoder: config of the encoder (``PSPEncoder``); ``in_channels``, ``num_styles``,
            ``style_dim`` and ``input_size`` default to the data's classes and the prior's.
        prior_checkpoint: the prior's weights: a checkpoint of a StyleGAN2 synthesizer (its EMA
            generator; ``zoo://NAME`` works), or of a bare generator. None keeps the random
            initialisation: for building before loading a trained checkpoint (the tools do
            that), refused by training (``PriorInversionHook``).
        mode: ``'dense'`` (class prototypes; dense label maps in) or ``'sparse'`` (per-pixel
            support features; scribbles in).
        feature_resolution: the prior's feature level used for pseudo labels (64).
        feature_layers: names of the prior's feature levels to concatenate (upsampled to the
            largest); None = the last StyledConv at ``feature_resolution``.
        top_k: sparse mode: sample pixels each labelled pixel claims (3).
        threshold: sparse mode: the minimum cosine of a claim (0.5).
        inversion: options of :func:`invert_images` (``steps``, ``lr``, ``optimizer``,
            ``perceptual`` (a :func:`build_perceptual` config or None), ``perceptual_weight``,
            ``init_std``, ``seed``).
        latent_avg_samples: latents averaged for ``w_avg`` when the prior checkpoint has no
            ``latent_avg`` (pSp reads the checkpoint's).
        multimodal: replace the fine layers' latents by a random sample's in :meth:`synthesize`.
        multimodal_from: the first W+ index replaced (the fine layers).
        **kwargs: :class:`PriorSynthesizer` / :class:`ConditionalGANSynthesizer`
            (``data_preprocessor``, ``eval_seed``, ``num_eval_samples``).
    """

    method = 'Fewshot-SMIS'

    def __init__(self, prior, encoder, prior_checkpoint=None, mode='dense',
                 feature_resolution=64, feature_layers=None, top_k=3, threshold=0.5,
                 inversion=None, latent_avg_samples=4096, multimodal=False, multimodal_from=8,
                 **kwargs):
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        super().__init__(prior, prior_checkpoint=prior_checkpoint, inversion=inversion,
                         latent_avg_samples=latent_avg_samples, **kwargs)
        gen = self.generator
        num_classes = getattr(self.data_preprocessor, 'num_classes', None)
        enc = dict(encoder) if isinstance(encoder, dict) else encoder
        if isinstance(enc, dict):
            enc.setdefault('in_channels', num_classes)
            enc.setdefault('num_styles', gen.n_latent)
            enc.setdefault('style_dim', gen.style_dim)
            enc.setdefault('input_size', gen.size)
            enc = MODELS.build(enc)
        if enc.num_styles != gen.n_latent or enc.style_dim != gen.style_dim:
            raise ValueError(f'the encoder gives {enc.num_styles} styles of {enc.style_dim}, the '
                             f'prior needs {gen.n_latent} of {gen.style_dim}')
        self.encoder = enc
        self.mode = mode
        levels = self.levels_at(feature_resolution) if feature_layers is None else \
            tuple(feature_layers)
        unknown = [n for n in levels if n not in gen.feature_levels()]
        if unknown:
            raise ValueError(f'feature_layers {unknown} are not feature levels of the prior '
                             f'({", ".join(gen.feature_levels())})')
        self.feature_layers = levels
        self.top_k = int(top_k)
        self.threshold = float(threshold)
        self.multimodal = bool(multimodal)
        if not 0 <= int(multimodal_from) <= gen.n_latent:
            raise ValueError(f'multimodal_from must be in [0, {gen.n_latent}], got '
                             f'{multimodal_from}')
        self.multimodal_from = int(multimodal_from)
        # set by prepare_pseudo_labels (not in checkpoints: recomputed from the cached inversion)
        self.register_buffer('prototypes', torch.zeros(0), persistent=False)
        self.register_buffer('present', torch.zeros(0, dtype=torch.bool), persistent=False)
        self.register_buffer('support', torch.zeros(0), persistent=False)
        self.register_buffer('support_labels', torch.zeros(0, dtype=torch.long),
                             persistent=False)
        self.prepared = False

    def optim_params(self, part):
        if part != 'encoder':
            raise ValueError(f"FewshotSMISSynthesizer trains only its encoder: optim_wrapper "
                             f"must have one entry, 'encoder', not {part!r}")
        return unwrap(self.encoder).parameters()

    # ------------------------------------------------------------------ pseudo labels
    def pseudo_labels(self, feats, size=None):
        """int64 Tensor[B, H, W] pseudo label maps of prior features (255: unlabelled)."""
        self._check_prepared()
        size = size or (self.generator.size,) * 2
        if self.mode == 'dense':
            return dense_pseudo_labels(feats, self.prototypes, self.present, size=size)
        return sparse_pseudo_labels(feats, self.support, self.support_labels, self.top_k,
                                    self.threshold, size=size,
                                    ignore_index=self.data_preprocessor.ignore_index)

    @torch.no_grad()
    def prepare_pseudo_labels(self, images, labels, cache_file=None, progress=True):
        """Invert the labelled images and compute the prototypes / support features.

        Args:
            images: float Tensor[N, 3, H, W] in [-1, 1] at the prior's size.
            labels: int64 Tensor[N, H, W]: dense label maps (dense mode) or sparse ones
                (scribbles, 255 = unlabelled; sparse mode).
            cache_file: where the inverted latents are kept (reused when the images and the
                inversion options are the same; written atomically), or None.
            progress: progress bar of the inversion.

        Returns:
            dict: ``latents`` Tensor[N, n_latent, D], ``mse`` Tensor[N] (reconstruction error),
            ``reconstructions`` Tensor[N, 3, H, W], ``from_cache`` bool.
        """
        gen = self.generator
        device = self.latent_avg.device
        labels = labels.to(device)
        latents, mse, from_cache = self.invert_cached(images, cache_file, progress)
        # the features of the inverted images with random noise maps, as the official code
        # (seeded: the same prototypes on every run and every rank)
        rng = torch.Generator().manual_seed(int(self.inversion.get('seed', 0)) + 1)
        feats, _ = self.prior_features(latents, noise=gen.draw_noise(len(latents), rng, device))
        recon = gen(None, latents, noise=self.stored_noise(), input_is_latent=True)
        if self.mode == 'dense':
            protos, present = class_prototypes(feats, labels, self.data_preprocessor.num_classes,
                                               self.data_preprocessor.ignore_index)
            self.prototypes, self.present = protos, present
        else:
            support, support_labels = support_features(feats, labels,
                                                       self.data_preprocessor.ignore_index)
            if support.shape[0] == 0:
                raise ValueError('sparse Fewshot-SMIS: the labelled images have no labelled '
                                 'pixel at the feature resolution (scribbles too thin?)')
            self.support, self.support_labels = support, support_labels
        self.prepared = True
        return dict(latents=latents, mse=mse, reconstructions=recon, from_cache=from_cache)

    def _check_prepared(self):
        if not self.prepared:
            raise RuntimeError('Fewshot-SMIS has no prototypes yet: training runs the '
                               'PriorInversionHook first (custom_hooks of the config), or call '
                               'model.prepare_pseudo_labels(images, labels).')

    # ------------------------------------------------------------------ training
    def train_step(self, data, optim_wrapper):
        """One encoder update on ``B`` pseudo-labelled random samples (``B``: the batch size
        of the loader, which yields the labelled shots)."""
        self._check_prepared()
        inputs = self.training_inputs(data)
        b = inputs['seg'].shape[0]
        gen = self.generator
        with torch.no_grad():
            z = torch.randn(b, gen.style_dim, device=self.latent_avg.device)
            w = gen.get_latent(z)
            feats, _ = self.prior_features(w)
            labels = self.pseudo_labels(feats)
            seg = self.data_preprocessor.one_hot(labels)
        wrapper = optim_wrapper['encoder']
        with wrapper.optim_context(self.encoder):
            w_hat = self.encode(seg)
            loss = F.mse_loss(w_hat, w[:, None].expand_as(w_hat))
        if self._check_finite(dict(loss_w=loss)):
            wrapper.update_params(loss)
        labelled = (labels != self.data_preprocessor.ignore_index).float().mean()
        MessageHub.get_current_instance().update_scalar('train/labelled', float(labelled))
        return dict(loss_w=loss.detach())

    def encode(self, seg):
        """One-hot Tensor[B, C, H, W] -> W+ Tensor[B, n_latent, D] (``E(seg) + w_avg``)."""
        size = unwrap(self.encoder).input_size
        if seg.shape[-1] != size or seg.shape[-2] != size:
            seg = F.interpolate(seg, size=(size, size), mode='nearest')
        return self.encoder(seg) + self.latent_avg

    # ------------------------------------------------------------------ inference
    def conditioning(self, inputs):
        """In sparse mode the scribbles (``inputs['scribbles']``, ``SimulateScribbles``) when
        the batch has them: the encoder's input, while the dense map stays the ground truth of
        the metrics."""
        if self.mode == 'sparse' and 'scribble_seg' in inputs:
            return inputs['scribbles'], inputs['scribble_seg']
        return super().conditioning(inputs)

    @torch.no_grad()
    def synthesize(self, seg, z=None, sample_ids=None, multimodal=None):
        """One-hot (dense or sparse) Tensor[B, C, H, W] -> images Tensor[B, 3, S, S].

        With ``multimodal`` (default: the synthesizer's) the W+ of layers
        ``multimodal_from`` onward come from ``z`` (Tensor[B, D]) or, without it, from the
        latent of each sample id (a pure function of ``(eval_seed, id)``), and the noise maps
        are per sample too; otherwise the prior's fixed noise maps are used.
        """
        gen = self.generator
        w = self.encode(seg)
        multimodal = self.multimodal if multimodal is None else bool(multimodal)
        noise = [getattr(gen.noises, f'noise_{i}') for i in range(gen.num_layers)]
        if multimodal:
            if z is None:
                z = self.sample_noise(seg.shape[0], sample_ids, seg.device)
            style = gen.get_latent(z.to(w))
            w = w.clone()
            w[:, self.multimodal_from:] = style[:, None]
            noise = self.sample_noise_maps(seg.shape[0], sample_ids, seg.device)
        return gen(None, w, noise=noise, input_is_latent=True)
