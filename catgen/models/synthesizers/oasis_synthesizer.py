"""OASIS (Sushko et al., ICLR 2021): a U-Net segmenter as discriminator, N+1 class loss,
LabelMix."""
from catgen.models.losses.labelmix import generate_labelmix, labelmix_loss
from catgen.registry import MODELS

from .base_synthesizer import ConditionalGANSynthesizer


@MODELS.register_module()
class OASISSynthesizer(ConditionalGANSynthesizer):
    """OASIS: generator with 3D noise and SPADE blocks, U-Net discriminator with N+1 outputs.

    Discriminator loss: class-balanced N+1 cross-entropy on real images (real pixels of class c
    target c+1) and on generated images (target 0, "fake"), plus ``labelmix_weight`` times the
    LabelMix consistency loss. Generator loss: the class-balanced N+1 loss of D on generated
    images with the real targets, plus an optional VGG perceptual loss.

    Args:
        generator: config of the generator (e.g. ``OASISGenerator``).
        discriminator: config of the discriminator (e.g. ``OASISDiscriminator``).
        loss: config of the N+1 loss (``OASISLoss``).
        labelmix_weight: weight of the LabelMix loss (official: 10; Cityscapes 5); 0 disables it.
        vgg_loss: optional config of a perceptual loss (``VGGPerceptualLoss``; off by default as
            in the official code).
        **kwargs: see :class:`ConditionalGANSynthesizer` (data_preprocessor, ema_momentum, ...).

    A transfer strategy can weigh OASIS's own adversarial terms per step
    (``TransferStrategy.family_loss_weight``; CDC's ``patch_loss='replace'`` sets 0 on its
    patch-level iterations): the discriminator's N+1 and LabelMix terms are dropped at weight 0
    (else scaled), the generator's N+1 term is scaled by it.
    """

    honours_family_loss_weight = True

    def __init__(self, generator, discriminator=None, loss=dict(type='OASISLoss'),
                 labelmix_weight=10.0, vgg_loss=None, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.loss = MODELS.build(loss)
        self.labelmix_weight = labelmix_weight
        self.vgg_loss = MODELS.build(vgg_loss) if vgg_loss else None

    def family_weight(self, part):
        """Weight of OASIS's own adversarial terms of ``part`` ('generator' or 'discriminator')
        in this step: the strategy's ``family_loss_weight``, else 1."""
        return 1.0 if self.transfer is None else float(self.transfer.family_loss_weight(part))

    def discriminator_loss(self, inputs):
        seg, real, label = inputs['seg'], inputs['img'], inputs['label']
        fake, z, _ = self.generate_for_training(inputs, grad=False)
        weight = self.family_weight('discriminator')
        if weight == 0:  # the strategy's terms replace OASIS's on this step
            return self.transfer_losses('discriminator', inputs, fake, z=z)
        out_fake = self.discriminator(fake, seg)
        out_real = self.discriminator(real, seg)
        losses = dict(loss_d_fake=self.loss(out_fake, seg, for_real=False),
                      loss_d_real=self.loss(out_real, seg, for_real=True))
        if self.labelmix_weight > 0:
            mixed, mask = generate_labelmix(label, fake, real, num_classes=seg.shape[1])
            out_mixed = self.discriminator(mixed, seg)
            losses['loss_d_labelmix'] = self.labelmix_weight * labelmix_loss(
                out_mixed, out_real, out_fake, mask)
        if weight != 1:
            losses = {k: weight * v for k, v in losses.items()}
        losses.update(self.transfer_losses('discriminator', inputs, fake, z=z))
        return losses

    def generator_loss(self, inputs):
        seg = inputs['seg']
        fake, z, feats = self.generate_for_training(inputs)
        losses = {}
        weight = self.family_weight('generator')  # the strategy's adversarial_weight by default
        if weight > 0:
            losses['loss_g_adv'] = weight * self.loss(
                self.discriminator(fake, seg), seg, for_real=True)
        if self.vgg_loss is not None:
            losses['loss_g_vgg'] = self.vgg_loss(fake, inputs['img'])
        losses.update(self.transfer_losses('generator', inputs, fake, z=z, feats=feats))
        return losses
