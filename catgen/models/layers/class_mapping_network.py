"""ClassMappingNetwork: noise -> one style token per class (CA2-SIS's optional random styles).

StarGAN v2's mapping network with one head per class, as CA2-SIS's ``noise_encoder``:

    shared:   Linear(z_dim -> hidden) ReLU, then (shared_layers - 1) x [Linear(hidden) ReLU]
    head c:   head_layers x [Linear(hidden) ReLU], then Linear(hidden -> token_dim)

Tokens of classes absent from the label map are zero (the official ``forward_noise``).
"""
import torch
import torch.nn as nn


class ClassMappingNetwork(nn.Module):
    """Noise Tensor[B, z_dim] -> tokens Tensor[B, K, token_dim].

    Args:
        num_classes: K (one head each).
        z_dim: noise width (16).
        token_dim: token width (1280).
        hidden: hidden width (512).
        shared_layers: layers of the shared trunk (4).
        head_layers: hidden layers of each head before its output layer (3).
    """

    def __init__(self, num_classes, z_dim=16, token_dim=1280, hidden=512, shared_layers=4,
                 head_layers=3):
        super().__init__()
        self.z_dim = int(z_dim)
        layers = [nn.Linear(z_dim, hidden), nn.ReLU()]
        for _ in range(shared_layers - 1):
            layers += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList()
        for _ in range(num_classes):
            head = []
            for _ in range(head_layers):
                head += [nn.Linear(hidden, hidden), nn.ReLU()]
            self.unshared.append(nn.Sequential(*head, nn.Linear(hidden, token_dim)))

    def forward(self, z, seg=None):
        """z: Tensor[B, z_dim]; seg: one-hot Tensor[B, K, H, W] or None (then every class
        gets a token) -> Tensor[B, K, token_dim]."""
        h = self.shared(z)
        tokens = torch.stack([head(h) for head in self.unshared], dim=1)
        if seg is not None:
            present = (seg.flatten(2).sum(-1) > 0).to(tokens.dtype)
            tokens = tokens * present[..., None]
        return tokens
