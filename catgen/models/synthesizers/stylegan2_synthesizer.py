"""StyleGAN2 training (Karras et al., CVPR 2020) as the few-shot adaptation papers run it.

The official rosinality/stylegan2-pytorch loop, one iteration:

1. D: non-saturating logistic loss ``softplus(D(G(z))) + softplus(-D(x))``; every
   ``r1_interval`` (16) iterations a SEPARATE D update with the lazy R1 penalty
   ``r1_gamma / 2 * E ||grad_x D(x)||^2 * r1_interval`` (gamma 10);
2. G: ``softplus(-D(G(z)))``; every ``path_length_interval`` (4) iterations a SEPARATE G update
   with the lazy path-length penalty ``path_length_weight * path_length_interval *
   (|J_w^T y| - a)^2`` on half the batch (``a`` a running mean with decay 0.01);
3. EMA of G (decay ``0.5 ** (32 / 10000)``).

z is mixed with probability ``mixing`` (0.9): two latents and a crossover layer (per-layer
latents, see :func:`~catgen.models.generators.stylegan2_generator.mix_latents`). The Adam
settings of the official code (lr ``0.002 * c``, betas ``(0, 0.99 ** c)``, ``c = k / (k + 1)``
for a lazy interval k) are in the configs (configs/_base_/models/stylegan2.py).
"""
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.models.generators.stylegan2_generator import mix_latents
from catgen.registry import MODELS

from .base_synthesizer import ConditionalGANSynthesizer, frozen, no_grad_sync, unwrap


def r1_penalty(real_logits, real_img):
    """``E_i ||grad_x D(x_i)||^2``: Tensor[B, 1] logits of ``real_img`` (which requires grad)
    -> scalar Tensor (differentiable: the graph is kept for the penalty's own gradient)."""
    grad, = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def path_length_penalty(img, latents, mean_path_length, decay=0.01):
    """StyleGAN2's path-length penalty.

    ``y ~ N(0, I) / sqrt(H * W)``; ``l_i = sqrt(mean_layers ||d(sum img * y)/d w_i||^2)``;
    ``a <- a + decay * (mean(l) - a)``; penalty ``mean((l - a)^2)``.

    Args:
        img: Tensor[B, 3, H, W] made from ``latents``.
        latents: Tensor[B, n_latent, D], the per-layer w's (in the graph of ``img``).
        mean_path_length: the running mean ``a`` (scalar Tensor).
        decay: its update rate.

    Returns:
        (penalty scalar Tensor, new running mean (detached), path lengths Tensor[B]).
    """
    noise = torch.randn_like(img) / (img.shape[2] * img.shape[3]) ** 0.5
    grad, = torch.autograd.grad((img * noise).sum(), latents, create_graph=True)
    lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    mean = mean_path_length + decay * (lengths.mean() - mean_path_length)
    return (lengths - mean).pow(2).mean(), mean.detach(), lengths


@MODELS.register_module()
class StyleGAN2Synthesizer(ConditionalGANSynthesizer):
    """Unconditional StyleGAN2: ``StyleGAN2Generator`` + ``StyleGAN2Discriminator`` on image data
    (``ImageDataPreprocessor``: ``seg`` has 0 channels and only carries the batch size).

    Args:
        generator: config of the generator (``StyleGAN2Generator``).
        discriminator: config of the discriminator (``StyleGAN2Discriminator``).
        r1_gamma: R1 weight gamma (10; 0 disables R1).
        r1_interval: iterations between lazy R1 updates (16); the penalty is scaled by it.
        path_length_weight: path-length weight (2; 0 disables it).
        path_length_interval: iterations between lazy path-length updates (4).
        path_batch_shrink: the path-length batch is ``batch // path_batch_shrink`` (2).
        mixing: probability of style mixing in training (0.9).
        truncation: psi used by :meth:`synthesize` (evaluation, sample grids, tools); 1 = off.
        **kwargs: see :class:`ConditionalGANSynthesizer` (data_preprocessor, ema_momentum
            (official: ``1 - 0.5 ** (32 / 10000)``), transfer, ...).

    Transfer strategies work through the model protocol as on the conditional families; a
    strategy's ``family_loss_weight`` scales (or, at 0, drops) the logistic losses of a step
    (CDC's patch-level iterations with ``patch_loss='replace'``, the official alternation).
    """

    honours_family_loss_weight = True

    def __init__(self, generator, discriminator=None, r1_gamma=10.0, r1_interval=16,
                 path_length_weight=2.0, path_length_interval=4, path_batch_shrink=2,
                 mixing=0.9, truncation=1.0, **kwargs):
        kwargs.setdefault('data_preprocessor', dict(type='ImageDataPreprocessor'))
        kwargs.setdefault('ema_momentum', 1 - 0.5 ** (32 / 10000))
        super().__init__(generator, discriminator, **kwargs)
        for name, value in (('r1_interval', r1_interval),
                            ('path_length_interval', path_length_interval),
                            ('path_batch_shrink', path_batch_shrink)):
            if int(value) < 1:
                raise ValueError(f'{name} must be >= 1, got {value}')
        if not 0 <= mixing <= 1:
            raise ValueError(f'mixing is a probability, got {mixing}')
        self.r1_gamma = float(r1_gamma)
        self.r1_interval = int(r1_interval)
        self.path_length_weight = float(path_length_weight)
        self.path_length_interval = int(path_length_interval)
        self.path_batch_shrink = int(path_batch_shrink)
        self.mixing = float(mixing)
        self.truncation = float(truncation)
        self.register_buffer('mean_path_length', torch.zeros(()))
        self._truncation_latent = None

    # ------------------------------------------------------------------ noise
    def sampled_training_noise(self, inputs):
        """z for a training step: with probability ``mixing`` per-layer latents from two draws
        (Tensor[B, n_latent, D]), else Tensor[B, D]."""
        z = super().sampled_training_noise(inputs)
        if self.mixing > 0 and float(torch.rand(())) < self.mixing:
            z2 = super().sampled_training_noise(inputs)
            z = mix_latents(z, z2, unwrap(self.generator).n_latent)
        return z

    def truncation_latent(self):
        """The EMA generator's mean w (4,096 latents, seed 0), computed once per run."""
        if self._truncation_latent is None:
            self._truncation_latent = self.eval_generator.mean_latent()
        return self._truncation_latent

    @torch.no_grad()
    def synthesize(self, seg, z=None, sample_ids=None, truncation=None):
        """Images Tensor[B, 3, H, W] from the EMA generator.

        ``seg`` (Tensor[B, 0, H, W]) gives the batch size. With ``sample_ids`` the latent and
        the per-layer noise maps of sample ``i`` are a pure function of ``(eval_seed, i)``
        (fixed latents: the same image for the same id, whatever the batch); otherwise ``z``
        (or fresh latents) with fresh noise. ``truncation`` (default: the synthesizer's)
        pulls w towards the mean w.
        """
        gen = self.eval_generator
        psi = self.truncation if truncation is None else float(truncation)
        b = seg.shape[0]
        noise = None
        if sample_ids is not None and z is None:
            zs, noises = [], []
            for i in sample_ids:
                rng = torch.Generator().manual_seed(int(self.eval_seed) * 1_000_003 + int(i))
                zs.append(torch.randn(gen.z_dim, generator=rng))
                noises.append(gen.draw_noise(1, generator=rng, device=seg.device))
            z = torch.stack(zs).to(seg.device)
            noise = [torch.cat(level) for level in zip(*noises)]
        elif z is None:
            z = torch.randn(b, gen.z_dim, device=seg.device)
        kwargs = {}
        if psi != 1:
            kwargs = dict(truncation=psi, truncation_latent=self.truncation_latent())
        return gen(seg, z, noise=noise, **kwargs)

    # ------------------------------------------------------------------ losses
    def family_weight(self, part):
        return 1.0 if self.transfer is None else float(self.transfer.family_loss_weight(part))

    def discriminator_loss(self, inputs):
        seg, real = inputs['seg'], inputs['img']
        fake, z, _ = self.generate_for_training(inputs, grad=False)
        losses = {}
        weight = self.family_weight('discriminator')
        if weight != 0:
            # two calls, as the official code: the minibatch standard deviation must not mix
            # generated and real images in one group
            lf = self.discriminator(fake, seg)
            lr = self.discriminator(real, seg)
            losses = dict(loss_d_fake=weight * F.softplus(lf).mean(),
                          loss_d_real=weight * F.softplus(-lr).mean())
        losses.update(self.transfer_losses('discriminator', inputs, fake, z=z))
        return losses

    def r1_loss(self, inputs):
        """The lazy R1 update's loss (``loss_d_r1``)."""
        real = inputs['img'].detach().requires_grad_(True)
        logits = self.discriminator(real, inputs['seg'])
        penalty = r1_penalty(logits, real)
        # 0 * logits: every D parameter takes part in the graph (DDP), as the official code
        return dict(loss_d_r1=self.r1_gamma / 2 * penalty * self.r1_interval
                    + 0 * logits[0, 0])

    def generator_loss(self, inputs):
        seg = inputs['seg']
        fake, z, feats = self.generate_for_training(inputs)
        losses = {}
        weight = self.family_weight('generator')
        if weight > 0:
            losses['loss_g_adv'] = weight * F.softplus(-self.discriminator(fake, seg)).mean()
        losses.update(self.transfer_losses('generator', inputs, fake, z=z, feats=feats))
        return losses

    def path_length_loss(self, inputs):
        """The lazy path-length update's loss (``loss_g_path``) on ``B // path_batch_shrink``
        samples with their own (mixed) latents."""
        seg = inputs['seg']
        b = max(1, seg.shape[0] // self.path_batch_shrink)
        z = self.sampled_training_noise(dict(inputs, seg=seg[:b]))
        if z.shape[0] != b:  # per-sample noise is drawn for the whole batch
            z = z[:b]
        img, latents = self.generator(seg[:b], z, return_latents=True)
        penalty, mean, lengths = path_length_penalty(img, latents, self.mean_path_length)
        self.mean_path_length.copy_(mean)
        MessageHub.get_current_instance().update_scalar('train/path_length',
                                                        float(lengths.detach().mean()))
        loss = self.path_length_weight * self.path_length_interval * penalty
        return dict(loss_g_path=loss + 0 * img[0, 0, 0, 0])

    # ------------------------------------------------------------------ training
    def train_step(self, data, optim_wrapper):
        """D update (+ lazy R1 update), G update (+ lazy path-length update), EMA update."""
        inputs = self.training_inputs(data)
        iteration = int(MessageHub.get_current_instance().get_info('iter', 0))
        log_vars = {}
        with self._training_randomness(inputs):
            if self.adversarial_weight > 0:
                log_vars.update(self._update(optim_wrapper['discriminator'], self.discriminator,
                                             self.discriminator_loss, inputs))
                if self.r1_gamma > 0 and iteration % self.r1_interval == 0:
                    log_vars.update(self._update(optim_wrapper['discriminator'],
                                                 self.discriminator, self.r1_loss, inputs))
            with frozen(self.discriminator), no_grad_sync(self.discriminator):
                log_vars.update(self._update(optim_wrapper['generator'], self.generator,
                                             self.generator_loss, inputs))
            if self.path_length_weight > 0 and iteration % self.path_length_interval == 0 \
                    and self.adversarial_weight > 0:
                log_vars.update(self._update(optim_wrapper['generator'], self.generator,
                                             self.path_length_loss, inputs))
        log_vars.pop('loss', None)
        self.update_ema()
        return log_vars
