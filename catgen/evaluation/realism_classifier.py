"""The realism classifier of DCL's analysis (Zhao et al. 2022, "A Closer Look at Few-shot Image
Generation"): a binary classifier trained on held-out real images of the source domain (label 0)
and of the target domain (label 1); the *quality* of an adapted generator is the classifier's mean
target probability over images generated from fixed latents.

The classifier is a small CNN trained from scratch (no ImageNet weights are needed): four
stride-2 3x3 convolutions (32, 64, 128, 128 channels, leaky ReLU), global average pooling, a
linear logit; Adam, binary cross-entropy, horizontal flips, balanced batches. 20 % of each
domain's images are held out to report its accuracy (a classifier that cannot tell the domains
apart measures nothing: :func:`train_realism_classifier` records the held-out accuracy and the
hook refuses a classifier below ``min_accuracy``).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RealismClassifier(nn.Module):
    """Source (0) vs target (1) classifier: ``Tensor[B, 3, H, W]`` in [-1, 1] -> logits [B].

    Args:
        width: channels of the first convolution (doubled twice, capped at 4 x width).
    """

    def __init__(self, width=32):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1)
                                   for i in range(4))
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, x):
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return self.head(x.mean(dim=(2, 3)))[:, 0]

    @torch.no_grad()
    def target_probability(self, imgs, batch_size=128):
        """Mean target probability and per-image probabilities of ``imgs`` (uint8 [N, 3, H, W]
        or float in [-1, 1]): ``(float, Tensor[N])``."""
        was = self.training
        self.eval()
        probs = []
        device = next(self.parameters()).device
        for start in range(0, len(imgs), batch_size):
            x = to_float(imgs[start:start + batch_size]).to(device)
            probs.append(torch.sigmoid(self(x)).cpu())
        self.train(was)
        p = torch.cat(probs)
        return float(p.mean()), p


def to_float(imgs):
    """uint8 [0, 255] -> float [-1, 1] (float input passes through)."""
    return imgs.float() / 127.5 - 1 if imgs.dtype == torch.uint8 else imgs.float()


def split_held_out(n, fraction, rng):
    """Indices ``(train, held_out)`` of ``n`` items, ``round(fraction * n)`` (>= 1) held out."""
    perm = rng.permutation(n)
    k = max(1, int(round(fraction * n)))
    return perm[k:], perm[:k]


def train_realism_classifier(source, target, iters=400, batch_size=32, lr=1e-3, width=32,
                             held_out=0.2, seed=0, log=None):
    """Train :class:`RealismClassifier` on real source vs target images.

    Args:
        source: uint8 Tensor[Ns, 3, H, W], held-out source-domain images (label 0).
        target: uint8 Tensor[Nt, 3, H, W], held-out target-domain images (label 1).
        iters: Adam steps.
        batch_size: images per step (half from each domain).
        lr: Adam learning rate.
        width: the CNN's first width.
        held_out: fraction of each domain kept aside to measure the accuracy.
        seed: seed of the initialisation, the split and the batches.
        log: a print-like function for one summary line, or None.

    Returns:
        ``(model in eval mode, info dict: accuracy, source/target held-out accuracies, counts)``.
    """
    if len(source) < 2 or len(target) < 2:
        raise ValueError(f'the realism classifier needs at least 2 images per domain, got '
                         f'{len(source)} source and {len(target)} target images')
    if source.shape[1:] != target.shape[1:]:
        raise ValueError(f'source images {tuple(source.shape[1:])} and target images '
                         f'{tuple(target.shape[1:])} differ in size; resize them first')
    rng = np.random.default_rng(seed)
    s_train, s_test = split_held_out(len(source), held_out, rng)
    t_train, t_test = split_held_out(len(target), held_out, rng)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = RealismClassifier(width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    half = max(1, batch_size // 2)
    for _ in range(int(iters)):
        si = torch.from_numpy(rng.choice(s_train, half))
        ti = torch.from_numpy(rng.choice(t_train, half))
        x = to_float(torch.cat([source[si], target[ti]]))
        flip = torch.from_numpy(rng.random(len(x)) < 0.5)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.cat([torch.zeros(half), torch.ones(half)])
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    _, ps = model.target_probability(source[torch.from_numpy(s_test)])
    _, pt = model.target_probability(target[torch.from_numpy(t_test)])
    acc_s, acc_t = float((ps < 0.5).float().mean()), float((pt >= 0.5).float().mean())
    info = dict(accuracy=(acc_s * len(ps) + acc_t * len(pt)) / (len(ps) + len(pt)),
                source_accuracy=acc_s, target_accuracy=acc_t,
                num_source=len(source), num_target=len(target), iters=int(iters), seed=seed)
    if log is not None:
        log(f'realism classifier: held-out accuracy {info["accuracy"]:.3f} (source '
            f'{acc_s:.3f}, target {acc_t:.3f}; {len(ps)} + {len(pt)} held-out images)')
    return model, info
