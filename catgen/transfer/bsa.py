"""BSA: batch statistics adaptation (Noguchi & Harada, ICCV 2019).

The source generator is frozen; only a per-channel scale and shift after every normalisation
layer are trained, together with one latent vector per training image. The generator is fitted
to the few target images by reconstruction (L1 + optional perceptual loss), without an
adversarial term; two regularisers keep the scales/shifts near identity and the latents near
N(0, I).

Where the scales and shifts are: the generator declares them through the model protocol
(``scale_shift()``: per-channel parameters after every normalisation, identity at
initialisation). OASIS and SPADE build them when their config says ``norm_affine=True`` (BSA's
configs do), so that ``out = (x_hat * scale + shift) * (1 + gamma(seg)) + beta(seg)``; the
architecture is the config's and a BSA checkpoint loads with its config alone. The source
checkpoint lacks these tensors by design (the protocol's ``adapter_keys``). The per-image latent
replaces the noise ``z``; a generator without noise (``z_dim == 0``) gets no latents.

How the latents reach the generator: :meth:`BSA.generator_noise` hands the synthesizer
``latents[inputs['sample_idx']]`` as the noise of the training step, so the synthesizer's own
``fake`` is BSA's reconstruction. With ``adversarial=False`` (default) the strategy's
``adversarial_weight`` is 0: the synthesizer drops its adversarial generator terms and skips
the discriminator update altogether.

Loading follows :class:`~catgen.transfer.finetune_all.FinetuneAll`: the class channels of the
layers that read the label map (the protocol's class slices) restart, since the target label
space differs (``reinit_class_layers=False`` copies them when the class counts match). With
``train_fresh_layers=True`` (default) those layers train too: frozen random weights could not
read the target label map at all. Everything else in G is frozen.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import MODELS, TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


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


@TRANSFER_STRATEGIES.register_module()
class BSA(FinetuneAll):
    """Batch statistics adaptation: frozen G, trainable scales/shifts and per-image latents.

    Generator losses added (names as logged):

    - ``loss_bsa_l1``: ``l1_weight * L1(G(seg, z_i), real_i)``;
    - ``loss_bsa_perceptual``: the ``perceptual`` loss module on the same pair (off by default);
    - ``loss_bsa_affine_reg``: ``affine_reg_weight * (mean((scale - 1)^2) + mean(shift^2))`` over
      all scale/shift entries;
    - ``loss_bsa_latent_reg``: ``latent_reg_weight * chamfer_to_normal(z_batch)``
      (see :func:`chamfer_to_normal`).

    Args:
        source_checkpoint: the source synthesizer checkpoint (see :class:`TransferStrategy`).
        num_latents: number of training images (one latent each); ``inputs['sample_idx']``
            (the dataset index, ``0 .. len(dataset) - 1``) selects the row. Set it to the
            number of shots.
        l1_weight: weight of the L1 reconstruction loss.
        perceptual: config of a perceptual loss, e.g.
            ``dict(type='VGGPerceptualLoss', weights_path='checkpoints/vgg19-dcbb9e9d.pth',
            weight=1.0)`` (needs local VGG19 weights); None (default) turns it off.
        affine_reg_weight: weight of the regulariser pulling scales to 1 and shifts to 0 (0.02).
        latent_reg_weight: weight of the regulariser pulling the latents towards N(0, I) (0.1).
        latent_init: 'zeros' (as the reference re-implementation) or 'normal' (N(0, I) drawn
            with ``latent_seed``).
        latent_seed: seed of the 'normal' initialisation.
        adversarial: keep the synthesizer's adversarial terms (and its discriminator updates);
            False (default) sets ``adversarial_weight`` to 0.
        train_fresh_layers: also train the generator layers re-initialised instead of copied from
            the source (the class-dependent layers, see :class:`FinetuneAll`).
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    def __init__(self, source_checkpoint=None, num_latents=100, l1_weight=1.0, perceptual=None,
                 affine_reg_weight=0.02, latent_reg_weight=0.1, latent_init='zeros',
                 latent_seed=0, adversarial=False, train_fresh_layers=True, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        if int(num_latents) < 1:
            raise ValueError(f'num_latents must be >= 1 (the number of training images), '
                             f'got {num_latents}')
        if latent_init not in ('zeros', 'normal'):
            raise ValueError(f"latent_init must be 'zeros' or 'normal', got {latent_init!r}")
        self.num_latents = int(num_latents)
        self.l1_weight = l1_weight
        self.perceptual = MODELS.build(perceptual) if perceptual else None
        self.affine_reg_weight = affine_reg_weight
        self.latent_reg_weight = latent_reg_weight
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
        self.logger.info(f'BSA: {len(self.norm_names)} scale/shift pairs, latents '
                         f'{self.num_latents}x{z_dim}, trainable re-initialised generator '
                         f'weights: {fresh or "none"}')

    def scale_shift_params(self, synth):
        """[(scale, shift), ...] of every scale/shift site of the generator."""
        return list(unwrap(synth.generator).scale_shift().values())

    def _trainable_generator_params(self, synth):
        gen = unwrap(synth.generator)
        params = [p for pair in self.scale_shift_params(synth) for p in pair]
        if self.train_fresh_layers:
            named = dict(gen.named_parameters())
            params += [named[n] for n in self.fresh_param_names(synth)]
        return params

    def set_trainable(self, synth):
        for p in unwrap(synth.generator).parameters():
            p.requires_grad_(False)
        for p in self._trainable_generator_params(synth):
            p.requires_grad_(True)

    # ------------------------------------------------------------------ training
    def optim_params(self, synth, part):
        if part == 'generator':
            params = self._trainable_generator_params(synth)
            if self.latents is not None:
                params.append(self.latents)
            return params
        return super().optim_params(synth, part)

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
        return self.batch_latents(inputs)

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        """``fake`` was generated with the batch's latents (see :meth:`generator_noise`)."""
        real = inputs['img']
        z = self.batch_latents(inputs)
        out = fake
        losses = dict(loss_bsa_l1=self.l1_weight * F.l1_loss(out, real))
        if self.perceptual is not None:
            losses['loss_bsa_perceptual'] = self.perceptual(out, real)
        pairs = self.scale_shift_params(synth)
        scales = torch.cat([s.reshape(-1) for s, _ in pairs])
        shifts = torch.cat([b.reshape(-1) for _, b in pairs])
        losses['loss_bsa_affine_reg'] = self.affine_reg_weight * (
            ((scales - 1) ** 2).mean() + (shifts ** 2).mean())
        if z is not None:
            losses['loss_bsa_latent_reg'] = self.latent_reg_weight * chamfer_to_normal(z)
        return losses
