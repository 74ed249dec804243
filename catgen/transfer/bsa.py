"""BSA: batch statistics adaptation (Noguchi & Harada, ICCV 2019).

The source generator is frozen; only a per-channel scale and shift after every normalisation
layer are trained, together with one latent vector per training image. The generator is fitted
to the few target images by reconstruction (L1 + a VGG perceptual loss), without an adversarial
term; two regularisers keep the scales/shifts near identity and the latents near N(0, I).

As the official code (nogu-atsu/small-dataset-image-generation, see docs/transfer.md):

- learning rate 0.03 (Adam) for the scales/shifts and the latents only (``adapter_lr``); the
  other trainable generator weights (here: the re-initialised label-reading layers) train at
  the optimizer config's learning rate, through a second parameter group;
- perceptual loss on: L1 between VGG features, weight 0.001 per VGG layer, summed over layers
  (catgen's :class:`~catgen.models.losses.VGGPerceptualLoss` on local VGG19 weights
  ``checkpoints/vgg19-dcbb9e9d.pth``; without that file BSA warns once and runs with L1 only);
- scale/shift regulariser: per site ``mean((scale - 1)^2) + mean(shift^2)``, summed over the
  sites (:func:`scale_shift_regulariser`), weight 0.02;
- latent regulariser: a Chamfer ("earth mover") distance to N(0, I) samples, weight 0.1;
- latent jitter: every training step the generator gets ``latent + N(0, 0.01^2)`` noise
  (:meth:`BSA.generator_noise`); the regulariser reads the latents themselves.

Where the scales and shifts are: the generator declares them through the model protocol
(``scale_shift()``: per-channel parameters after every normalisation, identity at
initialisation). OASIS and SPADE build them when their config says ``norm_affine=True`` (BSA's
configs do), so that ``out = (x_hat * scale + shift) * (1 + gamma(seg)) + beta(seg)``; the
architecture is the config's and a BSA checkpoint loads with its config alone. The source
checkpoint lacks these tensors by design (the protocol's ``adapter_keys``). The per-image latent
replaces the noise ``z``; a generator without noise (``z_dim == 0``) gets no latents.

How the latents reach the generator: :meth:`BSA.generator_noise` hands the synthesizer
``latents[inputs['sample_idx']]`` (plus the jitter) as the noise of the training step, so the
synthesizer's own ``fake`` is BSA's reconstruction. With ``adversarial=False`` (default) the
strategy's ``adversarial_weight`` is 0: the synthesizer drops its adversarial generator terms and
skips the discriminator update altogether.

Loading follows :class:`~catgen.transfer.finetune_all.FinetuneAll`: the class channels of the
layers that read the label map (the protocol's class slices) restart, since the target label
space differs (``reinit_class_layers=False`` copies them when the class counts match). With
``train_fresh_layers=True`` (default) those layers train too (at the optimizer's learning rate):
frozen random weights could not read the target label map at all. Everything else in G is
frozen.
"""
import copy
import os.path as osp
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.losses.vgg_perceptual_loss import SLICE_ENDS, VGG19_FILE, VGG19_URL
from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import MODELS, TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll

#: BSA's perceptual loss as published: L1 between VGG features, 0.001 per layer, summed over the
#: layers (here VGG19 relu1_1 .. relu5_1 from local torchvision weights).
DEFAULT_PERCEPTUAL = dict(type='VGGPerceptualLoss', weights_path=f'checkpoints/{VGG19_FILE}',
                          weight=0.001, layer_weights=(1.0,) * len(SLICE_ENDS))

#: weights files already warned about (the missing-VGG warning is given once per file)
_WARNED_MISSING = set()


def missing_vgg_message(path, required=False):
    """The warning (or, with ``required``, the error) when BSA's perceptual loss has no local
    VGG weights: the file, where to put it, what is lost."""
    where = (f'copy torchvision\'s {VGG19_FILE} (from {VGG19_URL}) to {path} (a relative path '
             f'is read from the directory you run from, normally the repository root) or point '
             f'model.transfer.perceptual.weights_path at the file')
    if required:
        return (f'BSA: the VGG19 weights of its perceptual loss are not at {path!r} and '
                f'require_perceptual=True: {where}.')
    return (f'BSA: the VGG19 weights of its perceptual loss are not at {path!r}, so BSA runs '
            f'with the L1 reconstruction loss only (the published method adds a VGG perceptual '
            f'loss, weight 0.001 per layer; without it reconstructions are usually blurrier). To '
            f'turn it on, {where}; set model.transfer.perceptual=None to run without it and '
            f'without this warning.')


def build_perceptual(cfg, required=False):
    """Build BSA's perceptual loss from ``cfg``, or None.

    Args:
        cfg: config of the loss (e.g. :data:`DEFAULT_PERCEPTUAL`), or None (no perceptual loss).
        required: a missing ``weights_path`` file is an error instead of a warning.

    Returns:
        the loss module, or None when ``cfg`` is None or its weights file is missing (then a
        warning, given once per file, names the file, where to put it and what is lost).

    Raises:
        FileNotFoundError: ``required`` and the weights file is missing.
    """
    if not cfg:
        return None
    cfg = copy.deepcopy(dict(cfg))
    path = cfg.get('weights_path')
    if path is not None and not osp.isfile(path):
        if required:
            raise FileNotFoundError(missing_vgg_message(path, required=True))
        if path not in _WARNED_MISSING:
            _WARNED_MISSING.add(path)
            warnings.warn(missing_vgg_message(path), UserWarning, stacklevel=2)
        return None
    return MODELS.build(cfg)


def chamfer_to_normal(z, num_ref_per_sample=10):
    """The latent regulariser of the official BSA code (its "earth mover" distance).

    Draws ``num_ref_per_sample * B`` reference points ``t ~ N(0, I)`` and returns
    ``mean_i min_j ||z_i - t_j||^2 + mean_j min_i ||z_i - t_j||^2`` (a Chamfer distance).

    Args:
        z: Tensor[B, D].
        num_ref_per_sample: reference points per latent.

    Returns:
        scalar Tensor.
    """
    t = torch.randn(z.shape[0] * num_ref_per_sample, z.shape[1], device=z.device, dtype=z.dtype)
    dist = (z ** 2).sum(1, keepdim=True) - 2 * z @ t.t() + (t ** 2).sum(1)
    return dist.min(dim=0)[0].mean() + dist.min(dim=1)[0].mean()


def scale_shift_regulariser(pairs):
    """The official BSA regulariser: ``sum_l [mean((scale_l - 1)^2) + mean(shift_l^2)]``.

    Each site (layer) contributes the mean squared deviation of its scales from 1 plus that of
    its shifts from 0; the sites are summed (not one mean pooled over all entries, which would
    weigh a layer by its width).

    Args:
        pairs: iterable of ``(scale, shift)``, each ``Tensor[C_l]``.

    Returns:
        scalar Tensor.
    """
    terms = [((s - 1) ** 2).mean() + (b ** 2).mean() for s, b in pairs]
    if not terms:
        raise ValueError('scale_shift_regulariser needs at least one (scale, shift) pair')
    return torch.stack(terms).sum()


@TRANSFER_STRATEGIES.register_module()
class BSA(FinetuneAll):
    """Batch statistics adaptation: frozen G, trainable scales/shifts and per-image latents.

    Generator losses added (names as logged):

    - ``loss_bsa_l1``: ``l1_weight * L1(G(seg, z_i + jitter), real_i)``;
    - ``loss_bsa_perceptual``: the ``perceptual`` loss module on the same pair (official:
      0.001 per VGG layer, summed over the layers);
    - ``loss_bsa_affine_reg``: ``affine_reg_weight * sum_l [mean((scale_l - 1)^2) +
      mean(shift_l^2)]`` over the scale/shift sites l (:func:`scale_shift_regulariser`);
    - ``loss_bsa_latent_reg``: ``latent_reg_weight * chamfer_to_normal(z_batch)``
      (see :func:`chamfer_to_normal`), on the latents without jitter.

    The generator's optimizer gets two parameter groups: the scales/shifts and latents at
    ``adapter_lr``, the re-initialised layers (``train_fresh_layers``) at the optimizer config's
    learning rate.

    Args:
        source_checkpoint: the source synthesizer checkpoint (see :class:`TransferStrategy`).
        num_latents: number of training images (one latent each); ``inputs['sample_idx']``
            (the dataset index, ``0 .. len(dataset) - 1``) selects the row. Set it to the
            number of shots.
        adapter_lr: learning rate of the scales/shifts and latents (official 0.03); None gives
            them the optimizer config's learning rate too.
        l1_weight: weight of the L1 reconstruction loss.
        perceptual: config of the perceptual loss (default :data:`DEFAULT_PERCEPTUAL`: VGG19
            features, 0.001 per layer, weights from ``checkpoints/vgg19-dcbb9e9d.pth``); None
            turns it off. A missing weights file gives a warning (once) and L1 only.
        require_perceptual: a missing VGG weights file is an error instead of a warning.
        affine_reg_weight: weight of the regulariser pulling scales to 1 and shifts to 0 (0.02).
        latent_reg_weight: weight of the regulariser pulling the latents towards N(0, I) (0.1).
        latent_jitter: std of the Gaussian noise added to the latents at every training step
            (official 0.01; 0 turns it off). Never added at inference.
        latent_init: 'zeros' (official default) or 'normal' (N(0, I) drawn with ``latent_seed``).
        latent_seed: seed of the 'normal' initialisation.
        adversarial: keep the synthesizer's adversarial terms (and its discriminator updates);
            False (default) sets ``adversarial_weight`` to 0.
        train_fresh_layers: also train the generator layers re-initialised instead of copied from
            the source (the class-dependent layers, see :class:`FinetuneAll`), at the
            optimizer config's learning rate.
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    def __init__(self, source_checkpoint=None, num_latents=100, adapter_lr=0.03, l1_weight=1.0,
                 perceptual=DEFAULT_PERCEPTUAL, require_perceptual=False, affine_reg_weight=0.02,
                 latent_reg_weight=0.1, latent_jitter=0.01, latent_init='zeros', latent_seed=0,
                 adversarial=False, train_fresh_layers=True, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        if int(num_latents) < 1:
            raise ValueError(f'num_latents must be >= 1 (the number of training images), '
                             f'got {num_latents}')
        if latent_init not in ('zeros', 'normal'):
            raise ValueError(f"latent_init must be 'zeros' or 'normal', got {latent_init!r}")
        if latent_jitter < 0:
            raise ValueError(f'latent_jitter is a standard deviation, >= 0; got {latent_jitter}')
        if adapter_lr is not None and adapter_lr <= 0:
            raise ValueError(f'adapter_lr must be > 0 (official 0.03) or None, got {adapter_lr}')
        self.num_latents = int(num_latents)
        self.adapter_lr = adapter_lr
        self.l1_weight = l1_weight
        self.perceptual = build_perceptual(perceptual, required=require_perceptual)
        self.affine_reg_weight = affine_reg_weight
        self.latent_reg_weight = latent_reg_weight
        self.latent_jitter = float(latent_jitter)
        self.latent_init = latent_init
        self.latent_seed = latent_seed
        self.adversarial = adversarial
        self.train_fresh_layers = train_fresh_layers
        self.norm_names = []  # generator modules that carry a scale/shift
        self.register_parameter('latents', None)

    # ------------------------------------------------------------------ set-up
    def fresh_param_names(self, synth):
        """Generator parameters of the class slices restarted instead of copied."""
        return self.class_param_names(unwrap(synth.generator), 'generator')

    def adapt(self, synth):
        gen = unwrap(synth.generator)
        sites = gen.scale_shift()
        if not sites:
            raise ValueError(
                f'BSA adapts the per-channel scale and shift after every normalisation, but '
                f'{type(gen).__name__} was built without them. Build the generator with them '
                f'(OASIS/SPADE: model.generator.norm_affine=True, as configs/bsa/*.py do).')
        self.norm_names = list(sites)
        z_dim = int(gen.z_dim or 0)
        if z_dim:
            if self.latent_init == 'zeros':
                init = torch.zeros(self.num_latents, z_dim)
            else:
                g = torch.Generator().manual_seed(self.latent_seed)
                init = torch.randn(self.num_latents, z_dim, generator=g)
            device = next(gen.parameters()).device
            self.latents = nn.Parameter(init.to(device))
        fresh = self.fresh_param_names(synth) if self.train_fresh_layers else []
        lr = 'the optimizer\'s' if self.adapter_lr is None else self.adapter_lr
        perceptual = 'on' if self.perceptual is not None else 'off (L1 only)'
        self.logger.info(f'BSA: {len(self.norm_names)} scale/shift pairs and latents '
                         f'{self.num_latents}x{z_dim} at lr {lr}; re-initialised generator '
                         f'weights trained at the optimizer\'s lr: {fresh or "none"}; '
                         f'perceptual loss: {perceptual}')

    def scale_shift_params(self, synth):
        """[(scale, shift), ...] of every scale/shift site of the generator."""
        return list(unwrap(synth.generator).scale_shift().values())

    def _fresh_params(self, synth):
        if not self.train_fresh_layers:
            return []
        named = dict(unwrap(synth.generator).named_parameters())
        return [named[n] for n in self.fresh_param_names(synth)]

    def _trainable_generator_params(self, synth):
        params = [p for pair in self.scale_shift_params(synth) for p in pair]
        return params + self._fresh_params(synth)

    def set_trainable(self, synth):
        for p in unwrap(synth.generator).parameters():
            p.requires_grad_(False)
        for p in self._trainable_generator_params(synth):
            p.requires_grad_(True)

    # ------------------------------------------------------------------ training
    def optim_params(self, synth, part):
        """The generator's optimizer: two parameter groups (dicts), the scales/shifts and latents
        (at ``adapter_lr``) and the re-initialised layers (the optimizer's own lr)."""
        if part != 'generator':
            return super().optim_params(synth, part)
        adapters = [p for pair in self.scale_shift_params(synth) for p in pair]
        if self.latents is not None:
            adapters.append(self.latents)
        fresh = self._fresh_params(synth)
        if self.adapter_lr is None:
            return adapters + fresh
        groups = [dict(params=adapters, lr=self.adapter_lr)]
        if fresh:
            groups.append(dict(params=fresh))  # no 'lr': the optimizer config's
        return groups

    def batch_latents(self, inputs):
        """The latents of the batch's images: Tensor[B, z_dim], or None without latents."""
        if self.latents is None:
            return None
        idx = inputs.get('sample_idx')
        if idx is None or (idx < 0).any():
            raise ValueError("BSA needs inputs['sample_idx'] (each image's dataset index) to "
                             'pick its latent; the synthesizer sets it in train_step from the '
                             "data samples' metainfo (keep sample_idx in PackSISInputs' meta "
                             'keys).')
        if (idx >= self.num_latents).any():
            raise ValueError(f'BSA got sample_idx {int(idx.max())} but has num_latents='
                             f'{self.num_latents}; set model.transfer.num_latents to the number '
                             'of training images (the shot count).')
        return self.latents[idx.to(self.latents.device)]

    @property
    def adversarial_weight(self):
        return 1.0 if self.adversarial else 0.0

    def generator_noise(self, synth, inputs):
        """The batch's latents, ``Tensor[B, z_dim]``, plus ``N(0, latent_jitter^2)`` noise while
        ``synth`` is training (the official code jitters at every step); None without latents."""
        z = self.batch_latents(inputs)
        if z is not None and self.latent_jitter > 0 and synth.training:
            z = z + self.latent_jitter * torch.randn_like(z)
        return z

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        """``fake`` was generated with the batch's (jittered) latents (see
        :meth:`generator_noise`); the latent regulariser reads the latents themselves."""
        real = inputs['img']
        losses = dict(loss_bsa_l1=self.l1_weight * F.l1_loss(fake, real))
        if self.perceptual is not None:
            losses['loss_bsa_perceptual'] = self.perceptual(fake, real)
        losses['loss_bsa_affine_reg'] = self.affine_reg_weight * scale_shift_regulariser(
            self.scale_shift_params(synth))
        latents = self.batch_latents(inputs)
        if latents is not None:
            losses['loss_bsa_latent_reg'] = self.latent_reg_weight * chamfer_to_normal(latents)
        return losses
