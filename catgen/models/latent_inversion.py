"""Inversion of images into a StyleGAN2's W+ by latent optimisation (as Fewshot-SMIS does).

For each image ``x`` (a batch at once, each with its own latents), find per-layer latents
``w`` [n_latent, D] such that ``G(w) ~ x``:

    w_0 = w_avg + init_std * N(0, I)
    minimise  ||G(w) - x||^2 (mean) + perceptual_weight * perceptual(G(w), x)

for ``steps`` steps of ``optimizer`` (Fewshot-SMIS: Ranger, lr 1, 2,000 steps, LPIPS AlexNet
weight 0.8, ``init_std = 1 / sqrt(D)``, fresh random noise maps every step, the best latents of
the checks every 50 steps kept). The generator is frozen. The perceptual term is any callable
``(fake, real) -> Tensor[B]`` on [-1, 1] images (:func:`build_perceptual`: LPIPS with local
backbone weights); None leaves MSE alone.
"""
import torch
from mmengine.utils import ProgressBar

from catgen.registry import OPTIMIZERS


def build_perceptual(cfg):
    """A perceptual distance ``(fake, real) -> Tensor[B]`` from ``cfg``: None, or
    ``dict(type='lpips', net='alex', backbone_path=None)`` (LPIPS of the lpips package with the
    ImageNet backbone from a local file, catgen.evaluation.lpips_model; a missing file is an
    error naming it and where to put it)."""
    if cfg is None:
        return None
    cfg = dict(cfg)
    kind = cfg.pop('type', 'lpips')
    if kind != 'lpips':
        raise ValueError(f"perceptual type must be 'lpips' (or perceptual=None), got {kind!r}")
    from catgen.evaluation.lpips_model import build_lpips
    net = build_lpips(net=cfg.pop('net', 'alex'), backbone_path=cfg.pop('backbone_path', None))
    if cfg:
        raise ValueError(f'unknown perceptual options {sorted(cfg)}')
    net.eval().requires_grad_(False)

    def distance(fake, real):
        return net(fake, real, normalize=False).flatten(1).mean(1)

    distance.module = net
    return distance


def invert_images(generator, images, latent_avg, steps=2000, lr=1.0,
                  optimizer=dict(type='Ranger'), perceptual=None, perceptual_weight=0.8,
                  init_std=None, noise='random', keep_best_every=50, seed=0, progress=True):
    """Optimise per-layer latents so that ``generator`` reproduces ``images``.

    Args:
        generator: a StyleGAN2Generator (frozen here; its mode and flags are restored).
        images: Tensor[N, 3, H, W] in [-1, 1], H = W = the generator's size.
        latent_avg: Tensor[D] or [1, D], the prior's average w (the starting point).
        steps: optimisation steps (Fewshot-SMIS 2,000).
        lr: learning rate (Fewshot-SMIS 1 with Ranger).
        optimizer: optimizer config without params and lr (``OPTIMIZERS``; Ranger by default).
        perceptual: None or a callable from :func:`build_perceptual`.
        perceptual_weight: weight of the perceptual term (0.8).
        init_std: std of the Gaussian added to ``latent_avg`` at the start; None = the official
            ``1 / sqrt(D)``.
        noise: the generator's noise maps during the optimisation: ``'random'`` (fresh maps
            every step, as the official code) or ``'const'`` (its stored maps).
        keep_best_every: every this many steps the latents of each image are kept if that
            step's loss is its lowest so far; the kept ones are returned (official: 50). 0
            returns the last.
        seed: seed of the initial Gaussian and of the random noise maps.
        progress: show a progress bar.

    Returns:
        ``(latents Tensor[N, n_latent, D], per-image MSE Tensor[N])`` (detached, on the
        generator's device; the MSE of the returned latents with the generator's stored noise
        maps, a deterministic figure).
    """
    if steps < 1:
        raise ValueError(f'inversion steps must be >= 1, got {steps}')
    if noise not in ('random', 'const'):
        raise ValueError(f"inversion noise must be 'random' or 'const', got {noise!r}")
    size = generator.size
    if images.dim() != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (size, size):
        raise ValueError(f'invert_images: images must be Tensor[N, 3, {size}, {size}] in [-1, 1] '
                         f'(the generator size), got {tuple(images.shape)}')
    device = latent_avg.device
    images = images.to(device)
    n = images.shape[0]
    start = latent_avg.reshape(1, 1, -1).expand(n, generator.n_latent, -1)
    rng = torch.Generator().manual_seed(int(seed))
    std = generator.style_dim ** -0.5 if init_std is None else float(init_std)
    w = (start + std * torch.randn(start.shape, generator=rng).to(device)).clone()
    w.requires_grad_(True)
    best, best_loss = w.detach().clone(), torch.full((n,), float('inf'), device=device)
    opt = OPTIMIZERS.build(dict(optimizer, params=[w], lr=lr))
    stored = [getattr(generator.noises, f'noise_{i}') for i in range(generator.num_layers)]
    flags = [p.requires_grad for p in generator.parameters()]
    was_training = generator.training
    generator.eval().requires_grad_(False)
    bar = ProgressBar(steps) if progress else None
    try:
        for step in range(steps):
            maps = stored if noise == 'const' else generator.draw_noise(n, rng, device)
            fake = generator(None, w, noise=maps, input_is_latent=True)
            per_image = (fake - images).pow(2).flatten(1).mean(1)
            if perceptual is not None and perceptual_weight:
                per_image = per_image + perceptual_weight * perceptual(fake, images)
            if keep_best_every and step % keep_best_every == 0:
                better = per_image.detach() < best_loss
                best[better] = w.detach()[better]
                best_loss = torch.minimum(best_loss, per_image.detach())
            opt.zero_grad(set_to_none=True)
            per_image.sum().backward()  # images are independent: each gets its own gradient
            opt.step()
            if bar is not None:
                bar.update()
        latents = best if keep_best_every else w.detach()
        with torch.no_grad():
            fake = generator(None, latents, noise=stored, input_is_latent=True)
            mse = (fake - images).pow(2).flatten(1).mean(1)
    finally:
        generator.train(was_training)
        for p, flag in zip(generator.parameters(), flags):
            p.requires_grad_(flag)
    if bar is not None:
        print()
    return latents.clone(), mse.detach()
