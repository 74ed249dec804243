"""GAN feature matching loss of pix2pixHD / SPADE (official ``GAN_Feat`` term)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.registry import MODELS


@MODELS.register_module()
class FeatureMatchingLoss(nn.Module):
    """L1 between the discriminator's intermediate features of fake and real images.

    As the official code: for each scale, the L1 (mean) of every output but the last (the logits)
    is summed over layers; real features are detached; the sum over scales is divided by the
    number of scales and multiplied by ``weight`` (official ``lambda_feat`` 10).

    Args:
        weight: factor of the loss (official 10).
    """

    def __init__(self, weight=10.0):
        super().__init__()
        self.weight = weight

    @staticmethod
    def _as_scales(feats):
        if isinstance(feats, torch.Tensor) or len(feats) == 0:
            raise ValueError('FeatureMatchingLoss expects a list of per-scale feature lists (or '
                             'one feature list), with the logits last')
        # One discriminator's list of tensors counts as a single scale.
        return [feats] if isinstance(feats[0], torch.Tensor) else feats

    def forward(self, fake_feats, real_feats):
        """Feature matching loss.

        Args:
            fake_feats: list[list[Tensor]] (scales x outputs, logits last) of D on fake images,
                or list[Tensor] for a single scale.
            real_feats: the same structure for real images; detached here.

        Returns:
            scalar Tensor.
        """
        fake_feats, real_feats = self._as_scales(fake_feats), self._as_scales(real_feats)
        if len(fake_feats) != len(real_feats):
            raise ValueError(f'fake has {len(fake_feats)} scales, real {len(real_feats)}')
        num_scales = len(fake_feats)
        loss = fake_feats[0][0].new_zeros(())
        for fake, real in zip(fake_feats, real_feats):
            if len(fake) != len(real):
                raise ValueError(f'fake has {len(fake)} outputs at a scale, real {len(real)}')
            for f, r in zip(fake[:-1], real[:-1]):  # the last output is the logits: excluded
                loss = loss + F.l1_loss(f, r.detach())
        return loss * (self.weight / num_scales)
