"""KL divergence of SPADE's VAE style encoder (official ``KLDLoss``)."""
import torch
import torch.nn as nn

from catgen.registry import MODELS


@MODELS.register_module()
class KLDLoss(nn.Module):
    """``KL(N(mu, exp(logvar)) || N(0, I))``, SUMMED over the batch and dimensions (as official),
    times ``weight`` (official ``lambda_kld`` 0.05).

    Args:
        weight: factor of the loss (official 0.05).
    """

    def __init__(self, weight=0.05):
        super().__init__()
        self.weight = weight

    def forward(self, mu, logvar):
        """mu, logvar: Tensor[B, z_dim] -> scalar Tensor."""
        return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) * self.weight
