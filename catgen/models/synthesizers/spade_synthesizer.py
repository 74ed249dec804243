"""SPADE (Park et al., CVPR 2019): multi-scale PatchGAN, hinge loss, feature matching, VGG."""
import torch

from catgen.registry import MODELS

from .base_synthesizer import ConditionalGANSynthesizer


@MODELS.register_module()
class SPADESynthesizer(ConditionalGANSynthesizer):
    """SPADE generator trained against a multi-scale PatchGAN conditioned on the label map.

    Discriminator loss: hinge on real and generated images. Generator loss: hinge,
    ``feature_matching`` (official weight 10) and an optional VGG perceptual loss (official
    weight 10; needs local VGG19 weights, so it is off unless configured).

    Args:
        generator: config of the generator (``SPADEGenerator``).
        discriminator: config of the discriminator (``MultiScalePatchGANDiscriminator``).
        gan_loss: config of the adversarial loss (``GANLoss`` with mode 'hinge').
        feature_matching_loss: config of the feature matching loss; None disables it.
        vgg_loss: optional config of ``VGGPerceptualLoss``.
        **kwargs: see :class:`ConditionalGANSynthesizer`.
    """

    def __init__(self, generator, discriminator=None, gan_loss=dict(type='GANLoss', mode='hinge'),
                 feature_matching_loss=dict(type='FeatureMatchingLoss', weight=10.0),
                 vgg_loss=None, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.gan_loss = MODELS.build(gan_loss)
        self.feature_matching_loss = (MODELS.build(feature_matching_loss)
                                      if feature_matching_loss else None)
        self.vgg_loss = MODELS.build(vgg_loss) if vgg_loss else None

    def discriminator_loss(self, inputs):
        seg, real = inputs['seg'], inputs['img']
        fake, z, _ = self.generate_for_training(inputs, grad=False)
        losses = dict(
            loss_d_fake=self.gan_loss(self.discriminator(fake, seg), False, for_discriminator=True),
            loss_d_real=self.gan_loss(self.discriminator(real, seg), True, for_discriminator=True))
        losses.update(self.transfer_losses('discriminator', inputs, fake, z=z))
        return losses

    def generator_loss(self, inputs):
        seg, real = inputs['seg'], inputs['img']
        fake, z, feats = self.generate_for_training(inputs)
        losses = {}
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
