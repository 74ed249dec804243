"""SPADE (Park et al., CVPR 2019): multi-scale PatchGAN, hinge loss, feature matching, VGG, and
the optional VAE style encoder (``use_vae``) with its KL divergence."""
import torch

from catgen.registry import MODELS

from .base_synthesizer import ConditionalGANSynthesizer, unwrap


@MODELS.register_module()
class SPADESynthesizer(ConditionalGANSynthesizer):
    """SPADE generator trained against a multi-scale PatchGAN conditioned on the label map.

    Discriminator loss: hinge on real and generated images. Generator loss: hinge,
    ``feature_matching`` (official weight 10) and an optional VGG perceptual loss (official
    weight 10; needs local VGG19 weights, so it is off unless configured).

    Style encoder (a generator built with ``use_vae=True``, which holds a ``SPADEEncoder``; the
    official ``--use_vae``): in every training step (the discriminator's and the generator's
    update, as the official ``generate_fake``) the real image is encoded into ``(mu, logvar)``
    and the generator gets ``z = mu + exp(logvar / 2) * eps``; ``eps`` is the step's noise
    (drawn as :meth:`sampled_training_noise` draws noise, so ``train_noise='per_sample'`` holds).
    The generator loss adds ``loss_g_kld`` = ``kld_loss(mu, logvar)`` (official ``lambda_kld``
    0.05); the encoder is trained by it and by the image losses through ``z``, with the
    generator's optimizer (its parameters are the generator's). A transfer strategy that
    supplies the noise (BSA's latents) replaces the encoding: no KLD then.

    Inference (:meth:`synthesize`, val/test): without a style image ``z ~ N(0, I)``, fixed per
    sample id as :meth:`sample_noise` draws it; with ``style`` the image is encoded and that
    same noise is the ``eps`` of the reparameterisation. (The official test script encodes the
    ground-truth image; catgen's val/test sample random styles, since metrics measure synthesis
    from the label map alone.)

    Args:
        generator: config of the generator (``SPADEGenerator``).
        discriminator: config of the discriminator (``MultiScalePatchGANDiscriminator``).
        gan_loss: config of the adversarial loss (``GANLoss`` with mode 'hinge').
        feature_matching_loss: config of the feature matching loss; None disables it.
        vgg_loss: optional config of ``VGGPerceptualLoss``.
        kld_loss: config of the KL divergence of the style encoder (``KLDLoss``, official
            weight 0.05); used only with a style encoder.
        **kwargs: see :class:`ConditionalGANSynthesizer`.
    """

    def __init__(self, generator, discriminator=None, gan_loss=dict(type='GANLoss', mode='hinge'),
                 feature_matching_loss=dict(type='FeatureMatchingLoss', weight=10.0),
                 vgg_loss=None, kld_loss=dict(type='KLDLoss', weight=0.05), **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.gan_loss = MODELS.build(gan_loss)
        self.feature_matching_loss = (MODELS.build(feature_matching_loss)
                                      if feature_matching_loss else None)
        self.vgg_loss = MODELS.build(vgg_loss) if vgg_loss else None
        self.kld_loss = MODELS.build(kld_loss) if kld_loss else None

    # ------------------------------------------------------------------ style encoder
    @property
    def encodes_style(self):
        """True when the generator holds a style encoder (``use_vae=True``)."""
        return getattr(unwrap(self.generator), 'encoder', None) is not None

    def style_code(self, generator, style, eps):
        """``z = mu + exp(logvar / 2) * eps`` of ``style`` under ``generator``'s encoder.

        Args:
            generator: the generator whose encoder is used (G in training, the EMA at
                inference).
            style: Tensor[B or 1, 3, H, W] in [-1, 1] (any size: the encoder resizes it).
            eps: Tensor[B, z_dim].

        Returns:
            ``(z, mu, logvar)``, each Tensor[B, z_dim].
        """
        if style.dim() == 3:
            style = style[None]
        if style.dim() != 4 or style.shape[1] != 3:
            raise ValueError(f'style must be an image Tensor[B, 3, H, W] in [-1, 1], got '
                             f'{tuple(style.shape)}')
        if style.shape[0] not in (1, eps.shape[0]):
            raise ValueError(f'{style.shape[0]} style images for {eps.shape[0]} label maps: give '
                             'one style image, or one per label map')
        mu, logvar = generator.encode(style.to(eps))
        if mu.shape[0] == 1 and eps.shape[0] > 1:
            mu, logvar = mu.expand_as(eps), logvar.expand_as(eps)
        return generator.reparameterize(mu, logvar, eps), mu, logvar

    def generate_with_style(self, inputs, grad=True):
        """The step's one generator forward, the style code included:
        ``(fake, z, feats, (mu, logvar) or None)``.

        ``z``: the transfer strategy's noise if it gives one; else, with a style encoder, the
        code of the real images (``inputs['img']``); else the step's sampled noise (as
        :meth:`generate_for_training`). ``feats`` as in :meth:`generate_for_training`.
        """
        seg = inputs['seg']
        z = None if self.transfer is None else self.transfer.generator_noise(self, inputs)
        want = grad and self.transfer is not None and self.transfer.needs_generator_features
        stats = None
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            if z is None and self.encodes_style and inputs.get('img') is not None:
                # the encoder is a submodule of the generator: under DDP its gradients are
                # all-reduced with the generator's (its output feeds the DDP-wrapped forward)
                eps = self.sampled_training_noise(inputs)
                z, mu, logvar = self.style_code(unwrap(self.generator), inputs['img'], eps)
                stats = (mu, logvar)
            elif z is None:
                z = self.sampled_training_noise(inputs)
            out = self.generator(seg, z, return_features=True) if want else self.generator(seg, z)
        fake, feats = out if want else (out, None)
        return fake, z, feats, stats

    def generate_for_training(self, inputs, grad=True):
        """``(fake, z, feats)`` of :meth:`generate_with_style`."""
        return self.generate_with_style(inputs, grad=grad)[:3]

    @torch.no_grad()
    def synthesize(self, seg, z=None, sample_ids=None, style=None):
        """seg: float Tensor[B, C, H, W] (one-hot, plus the edge channel when the model reads
        one) -> image Tensor[B, 3, H, W] in [-1, 1].

        Args:
            seg: the label maps.
            z: the style codes Tensor[B, z_dim] (``use_vae``); None: from ``style`` or random.
            sample_ids: ids fixing the noise per sample (see :meth:`sample_noise`).
            style: None (a random style, ``z ~ N(0, I)``) or style images Tensor[B or 1, 3, H,
                W] in [-1, 1] to encode (needs a generator with a style encoder).
        """
        if style is None or z is not None:
            return super().synthesize(seg, z=z, sample_ids=sample_ids)
        gen = self.eval_generator
        if getattr(gen, 'encoder', None) is None:
            raise ValueError('a style image needs a SPADE generator with a style encoder '
                             '(model.generator.use_vae=True, trained with it); this model has '
                             'none')
        eps = self.sample_noise(seg.shape[0], sample_ids, seg.device)
        z, _, _ = self.style_code(gen, style.to(seg.device), eps)
        return gen(seg, z)

    # ------------------------------------------------------------------ losses
    def discriminator_loss(self, inputs):
        seg, real = inputs['seg'], inputs['img']
        fake, z, _, _ = self.generate_with_style(inputs, grad=False)
        losses = dict(
            loss_d_fake=self.gan_loss(self.discriminator(fake, seg), False, for_discriminator=True),
            loss_d_real=self.gan_loss(self.discriminator(real, seg), True, for_discriminator=True))
        losses.update(self.transfer_losses('discriminator', inputs, fake, z=z))
        return losses

    def generator_loss(self, inputs):
        seg, real = inputs['seg'], inputs['img']
        fake, z, feats, stats = self.generate_with_style(inputs)
        losses = {}
        if stats is not None and self.kld_loss is not None:
            losses['loss_g_kld'] = self.kld_loss(*stats)
        if self.adversarial_weight > 0:
            w = self.adversarial_weight
            pred_fake = self.discriminator(fake, seg)
            losses['loss_g_adv'] = w * self.gan_loss(pred_fake, True, for_discriminator=False)
            if self.feature_matching_loss is not None:
                with torch.no_grad():
                    pred_real = self.discriminator(real, seg)
                losses['loss_g_fm'] = w * self.feature_matching_loss(pred_fake, pred_real)
        if self.vgg_loss is not None:
            losses['loss_g_vgg'] = self.vgg_loss(fake, real)
        losses.update(self.transfer_losses('generator', inputs, fake, z=z, feats=feats))
        return losses
