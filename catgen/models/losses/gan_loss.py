"""Adversarial losses of SPADE (official ``GANLoss``): hinge, least squares, vanilla, WGAN."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


@MODELS.register_module()
class GANLoss(nn.Module):
    """Adversarial loss on discriminator logits, single- or multi-scale.

    Modes (as the official code; ``x`` = logits):

    - 'hinge': D on real ``mean(relu(1 - x))``, D on fake ``mean(relu(1 + x))``, G ``-mean(x)``.
    - 'ls': ``mean((x - target)^2)``, target ``real_label`` / ``fake_label``.
    - 'vanilla' (official 'original'): binary cross-entropy with logits against the target.
    - 'wgan' (official 'w'): ``-mean(x)`` for real, ``mean(x)`` for fake.

    Args:
        mode: 'hinge' (SPADE's default), 'ls', 'vanilla' or 'wgan'.
        real_label: target for real in 'ls' and 'vanilla'.
        fake_label: target for fake in 'ls' and 'vanilla'.
        weight: factor applied to the returned loss.
    """

    _ALIASES = {'original': 'vanilla', 'w': 'wgan', 'lsgan': 'ls'}
    MODES = ('hinge', 'ls', 'vanilla', 'wgan')

    def __init__(self, mode='hinge', real_label=1.0, fake_label=0.0, weight=1.0):
        super().__init__()
        mode = self._ALIASES.get(mode, mode)
        if mode not in self.MODES:
            raise ValueError(f'GANLoss mode must be one of {self.MODES}, got {mode!r}')
        self.mode = mode
        self.real_label = real_label
        self.fake_label = fake_label
        self.weight = weight

    def _single(self, x, target_is_real, for_discriminator):
        if self.mode == 'hinge':
            if not for_discriminator:
                if not target_is_real:
                    raise ValueError("the generator's hinge loss must aim for real "
                                     '(target_is_real=True)')
                return -x.mean()
            return F.relu(1 - x).mean() if target_is_real else F.relu(1 + x).mean()
        if self.mode == 'wgan':
            return -x.mean() if target_is_real else x.mean()
        target = torch.full_like(x, self.real_label if target_is_real else self.fake_label)
        if self.mode == 'ls':
            return F.mse_loss(x, target)
        return F.binary_cross_entropy_with_logits(x, target)

    def forward(self, pred, target_is_real, for_discriminator=True):
        """Loss of discriminator outputs.

        Args:
            pred: Tensor (logits of one discriminator), or a list with one entry per scale, each
                a Tensor or a list of tensors whose LAST one is the logits (the output of
                :class:`MultiScalePatchGANDiscriminator`). A list is always read as scales: wrap
                a single PatchGAN's feature list as ``[feats]``.
            target_is_real: whether ``pred`` should be judged real.
            for_discriminator: the discriminator's loss (True) or the generator's (False; only
                matters for 'hinge').

        Returns:
            scalar Tensor: ``weight`` * the loss, averaged over scales (as official).
        """
        if isinstance(pred, (list, tuple)):
            if len(pred) == 0:
                raise ValueError('GANLoss got an empty list of predictions')
            total = 0
            for scale in pred:
                logits = scale[-1] if isinstance(scale, (list, tuple)) else scale
                total = total + self._single(logits, target_is_real, for_discriminator)
            loss = total / len(pred)
        else:
            loss = self._single(pred, target_is_real, for_discriminator)
        return loss * self.weight
