"""PriorSynthesizer: the base of label-to-image models built on a frozen StyleGAN2 prior.

Fewshot-SMIS (an encoder into the prior's W+) and SIS-UG (a rearranger of the prior's features)
share the prior's handling, written here once:

- the prior: a :class:`~catgen.models.generators.StyleGAN2Generator` built from ``prior`` and
  loaded from ``prior_checkpoint`` (a StyleGAN2 synthesizer checkpoint, its EMA generator; a
  bare generator's; ``zoo://NAME``), frozen and always in eval mode; checkpoints of the
  synthesizer hold it, so inference needs no prior file;
- its average latent ``latent_avg`` (the checkpoint's ``latent_avg`` when it has one, as pSp
  reads it, else the mean of mapped samples);
- its feature levels by resolution (:meth:`levels_at`, :meth:`level_resolution`) and the
  features of latents (:meth:`prior_features`);
- the inversion of labelled images into its W+ with a cache in the work dir
  (:meth:`invert_cached`; :func:`~catgen.models.latent_inversion.invert_images`).
"""
import hashlib
import json
import os
import os.path as osp

import torch
import torch.nn.functional as F

from catgen.models.latent_inversion import build_perceptual, invert_images
from catgen.registry import MODELS
from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load

from .base_synthesizer import ConditionalGANSynthesizer


class PriorSynthesizer(ConditionalGANSynthesizer):
    """A synthesizer whose generator is a frozen, pretrained StyleGAN2 (the prior).

    Args:
        prior: config (or module) of the prior (``StyleGAN2Generator``).
        prior_checkpoint: the prior's weights (see the module doc); None keeps the random
            initialisation: for building before loading a trained checkpoint (the tools do
            that); training refuses it.
        inversion: options of :func:`invert_images` (``steps``, ``lr``, ``optimizer``,
            ``perceptual`` (a :func:`build_perceptual` config or None), ``perceptual_weight``,
            ``init_std``, ``seed``).
        latent_avg_samples: latents averaged for ``latent_avg`` when the prior checkpoint has
            none.
        **kwargs: :class:`ConditionalGANSynthesizer` (``data_preprocessor``, ``eval_seed``,
            ``num_eval_samples``); no discriminator, no transfer strategy, no EMA.
    """

    method = 'this method'  # named in error messages

    def __init__(self, prior, prior_checkpoint=None, inversion=None, latent_avg_samples=4096,
                 **kwargs):
        for key in ('discriminator', 'transfer'):
            if kwargs.get(key) is not None:
                raise ValueError(f'{type(self).__name__} takes no {key}: the prior is frozen')
        kwargs['ema_momentum'] = None
        super().__init__(generator=None, **kwargs)
        self.generator = MODELS.build(dict(prior)) if isinstance(prior, dict) else prior
        self.prior_checkpoint = prior_checkpoint
        self._prior_latent_avg = None
        if prior_checkpoint is not None:
            self._load_prior(prior_checkpoint)
        self.generator.requires_grad_(False).eval()
        self.inversion = dict(inversion or {})
        avg = self._prior_latent_avg
        if avg is None:
            avg = self.generator.mean_latent(int(latent_avg_samples))[0]
        self.register_buffer('latent_avg', avg.reshape(-1).float().clone())

    # ------------------------------------------------------------------ the prior
    def _load_prior(self, checkpoint):
        what = f'prior checkpoint {checkpoint}'
        try:
            raw = safe_load(checkpoint, map_location='cpu')
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f'{err} The prior of {self.method} is a StyleGAN2 trained on unlabelled images '
                'of the domain: a checkpoint of tools/train.py with a configs/stylegan2/ '
                'config, a rosinality checkpoint converted by '
                'tools/convert_stylegan2_checkpoint.py, or zoo://stylegan2_synthscenes-source '
                '(docs/model_zoo.md).') from err
        if isinstance(raw, dict) and torch.is_tensor(raw.get('latent_avg')):
            self._prior_latent_avg = raw['latent_avg']
        state = read_state_dict(raw, what=what)
        if any(k.startswith(('generator_ema.', 'generator.')) for k in state):
            state = read_state_dict(state, prefix=('generator_ema.module.', 'generator.'),
                                    what=what)
        load_state_dict_checked(self.generator, state, source=what)

    def train(self, mode=True):
        """Train mode for the trained parts only: the prior stays in eval mode."""
        super().train(mode)
        self.generator.eval()
        return self

    def stored_noise(self):
        """The prior's fixed per-layer noise maps (deterministic synthesis)."""
        gen = self.generator
        return [getattr(gen.noises, f'noise_{i}') for i in range(gen.num_layers)]

    def sample_noise_maps(self, batch_size, sample_ids=None, device=None):
        """Per-layer noise maps of the prior for a batch: with ``sample_ids`` those of sample
        ``i`` are a pure function of ``(eval_seed, i)`` (reproducible evaluation), else random
        (the global RNG). Returns a list of ``num_layers`` Tensor[B, 1, r, r]."""
        gen = self.generator
        device = device or self.latent_avg.device
        if sample_ids is None:
            return gen.draw_noise(batch_size, None, device)
        per_sample = [gen.draw_noise(1, torch.Generator().manual_seed(
            int(self.eval_seed) * 1_000_003 + int(i) + 104_729), device) for i in sample_ids]
        return [torch.cat(maps) for maps in zip(*per_sample)]

    @staticmethod
    def level_resolution(level):
        """The output size of a StyleGAN2 feature level ('conv1': 4, 'convs.i': 2 ** (3 + i//2))."""
        if level == 'conv1':
            return 4
        return 2 ** (3 + int(level.split('.')[1]) // 2)

    def levels_at(self, resolution):
        """The last feature level of the prior at ``resolution``, as a 1-tuple."""
        gen = self.generator
        names = [n for n in gen.feature_levels() if self.level_resolution(n) == int(resolution)]
        if not names:
            raise ValueError(f'the prior ({gen.size} px) has no feature level at '
                             f'{resolution} px; choose a power of 2 in [4, {gen.size}]')
        return (names[-1],)

    def prior_features(self, w, noise=None, layers=None):
        """Prior features of latents ``w`` (Tensor[B, D] or [B, n_latent, D], w's): the levels
        ``layers`` (default: the synthesizer's ``feature_layers``) upsampled (bilinear) to the
        largest and concatenated, Tensor[B, F, r, r], and the images."""
        layers = self.feature_layers if layers is None else layers
        img, feats = self.generator(None, w, noise=noise, input_is_latent=True,
                                    return_features=True)
        maps = [feats[n] for n in layers]
        size = max(m.shape[-1] for m in maps)
        maps = [m if m.shape[-1] == size else
                F.interpolate(m, size=(size, size), mode='bilinear', align_corners=False)
                for m in maps]
        return torch.cat(maps, dim=1), img

    # ------------------------------------------------------------------ inversion
    @torch.no_grad()
    def invert_cached(self, images, cache_file=None, progress=True):
        """Invert ``images`` (float Tensor[N, 3, S, S] in [-1, 1], the prior's size) into W+.

        The latents are cached in ``cache_file`` (reused when the images and the inversion
        options are the same; written atomically) when it is not None.

        Returns:
            ``(latents Tensor[N, n_latent, D], mse Tensor[N], from_cache bool)``.
        """
        device = self.latent_avg.device
        images = images.to(device)
        # the cache is valid for these images and these inversion options (a plain string:
        # catgen's safe loader reads back nothing but tensors and builtins)
        digest = hashlib.sha256(images.detach().float().cpu().numpy().tobytes()).hexdigest()
        key = json.dumps(dict(images=digest, inversion=self.inversion), sort_keys=True,
                         default=str)
        if cache_file is not None and osp.isfile(cache_file):
            cached = safe_load(cache_file, map_location='cpu')
            if cached.get('key') == key:
                return cached['latents'].to(device), cached['mse'].to(device), True
        opts = dict(self.inversion)
        perceptual = build_perceptual(opts.pop('perceptual', None))
        if perceptual is not None:
            perceptual.module.to(device)
        with torch.enable_grad():
            latents, mse = invert_images(self.generator, images, self.latent_avg,
                                         perceptual=perceptual, progress=progress, **opts)
        if cache_file is not None:
            os.makedirs(osp.dirname(osp.abspath(cache_file)), exist_ok=True)
            tmp = f'{cache_file}.tmp'
            torch.save(dict(key=key, latents=latents.cpu(), mse=mse.cpu()), tmp)
            os.replace(tmp, cache_file)
        return latents, mse.to(device), False
