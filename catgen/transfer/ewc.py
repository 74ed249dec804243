"""EWC: elastic weight consolidation for few-shot GAN adaptation (Li et al., NeurIPS 2020).

Finetune everything, with a penalty that keeps the generator weights that mattered to the source
model near their source values:

    loss_ewc = weight * sum_i F_i * (theta_i - theta_source_i)^2

``F`` is the diagonal Fisher information of the SOURCE generator, estimated once at set-up from
squared gradients of the frozen source discriminator's log-likelihood on source-generated images.

catgen's choices (the paper's scale of lambda and its sample count are unconfirmed):

- The source model is the full source checkpoint, class-count-dependent layers included: the
  generator and discriminator are copied and given the source tensors (see
  :func:`source_shaped_copy`). The generator copy runs in train mode (BatchNorm with batch
  statistics, as during training), the discriminator copy in eval mode.
- Source label maps: the strategy sees no source data, so each Fisher batch uses random blocky
  label maps: a ``fisher_label_grid x fisher_label_grid`` grid of source classes drawn uniformly
  from the real classes ``1 .. N_s - 1`` (channel 0 = don't care is never drawn), upsampled
  (nearest) to the generator's output size; noise ``z ~ N(0, I)``; all from ``fisher_seed``.
- Log-likelihood: the discriminator's own (model protocol, ``log_likelihood``). OASIS's N+1
  discriminator (``log_likelihood='real'``, default): per pixel the log-probability that the
  pixel is real, i.e. of the union of the N real class channels,
  ``log(1 - p_fake) = logsumexp(logits[1:]) - logsumexp(logits)``, averaged over pixels and the
  batch; ``'label'``: the log-probability of the class channel of the generating label map,
  ``log_softmax(logits)[argmax(seg) + 1]``, averaged over pixels that are not don't-care. A
  PatchGAN: ``mean(log sigmoid(final patch logits))`` over scales.
- ``F_i = mean over the num_fisher_samples batches of (d loglik / d theta_i)^2`` (one gradient per
  batch of ``fisher_batch_size``; with batch size 1 this is the per-sample empirical Fisher).
  ``fisher_normalization='mean'`` divides F by its mean over all penalised entries, which makes
  ``weight`` independent of the discriminator's scale; 'none' keeps the raw values.
- Loading as :class:`~catgen.transfer.finetune_all.FinetuneAll` (class channels restarted,
  everything trains). Only generator parameters copied from the source (same shape, outside
  the class slices) get the penalty; ``F`` and
  ``theta_source`` are buffers of the strategy (``transfer.fisher.*``, ``transfer.source_params.*``
  in checkpoints, dots in names written as ``__``).
"""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import TRANSFER_STRATEGIES

from .finetune_all import FinetuneAll


def source_shaped_copy(module, source_state):
    """A deep copy of ``module`` holding exactly ``source_state``, shapes included.

    Tensors whose shape differs (class-count-dependent layers) are replaced by the source
    tensors, so the copy is the source model. Works for layers whose forward takes its shapes
    from its tensors (convolutions, linear layers).

    Args:
        module: the target-shaped module (e.g. the synthesizer's generator).
        source_state: the source state dict of that module (no prefix).

    Returns:
        nn.Module in eval mode with ``requires_grad=False`` everywhere.
    """
    clone = copy.deepcopy(module).eval()
    own = clone.state_dict()
    unknown = sorted(set(source_state) - set(own))
    if unknown:
        raise KeyError(f'the source weights have keys that {type(module).__name__} lacks: '
                       f'{unknown[:10]}; is the source the same architecture?')
    for key, value in source_state.items():
        path, _, name = key.rpartition('.')
        owner = clone.get_submodule(path) if path else clone
        value = value.detach().clone().to(own[key].device)
        if name in owner._parameters:
            owner._parameters[name] = nn.Parameter(value, requires_grad=False)
        elif name in owner._buffers:
            owner._buffers[name] = value
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def source_num_classes(generator, source_state):
    """The source class count: the target's ``num_classes`` plus the input-channel difference of
    the generator's label-reading layers (all must agree)."""
    own = generator.state_dict()
    deltas = {int(v.shape[1] - own[k].shape[1]) for k, v in source_state.items()
              if k in own and v.dim() >= 2 and tuple(v.shape) != tuple(own[k].shape)}
    if len(deltas) > 1:
        raise ValueError(f'cannot infer the source class count: the mismatching generator layers '
                         f'differ by {sorted(deltas)} input channels')
    return generator.num_classes + (deltas.pop() if deltas else 0)


def random_label_maps(batch_size, num_classes, size, grid, generator):
    """Blocky random one-hot label maps: Tensor[B, num_classes, H, W] (channel 0 never set).

    A ``grid x grid`` map of classes drawn uniformly from ``1 .. num_classes - 1`` with
    ``generator``, upsampled (nearest) to ``size = (H, W)``.
    """
    if num_classes < 2:
        raise ValueError(f'need at least one real class besides don\'t care, got {num_classes}')
    cells = torch.randint(1, num_classes, (batch_size, 1, grid, grid), generator=generator)
    label = F.interpolate(cells.float(), size=tuple(size), mode='nearest').long()[:, 0]
    return F.one_hot(label, num_classes).permute(0, 3, 1, 2).float()


def discriminator_log_likelihood(disc, img, seg, kind='real'):
    """The discriminator's mean log-likelihood that ``img`` is real (see the module doc): the
    model protocol's ``disc.log_likelihood(disc(img, seg), seg, kind)``.

    Args:
        disc: a :class:`~catgen.models.protocol.TransferableDiscriminator`.
        img: Tensor[B, 3, H, W]; seg: Tensor[B, N, H, W] one-hot (the generating label map).
        kind: 'real' or 'label' (discriminators with a class head only).

    Returns:
        scalar Tensor.
    """
    return disc.log_likelihood(disc(img, seg), seg, kind)


class TensorStore(nn.Module):
    """Named tensors kept as buffers (moved with the model, saved in checkpoints);
    ``store['a.b']`` is the buffer ``a__b``."""

    def __init__(self, tensors):
        super().__init__()
        self.names = list(tensors)
        for name, value in tensors.items():
            self.register_buffer(name.replace('.', '__'), value)

    def __getitem__(self, name):
        return self._buffers[name.replace('.', '__')]

    def items(self):
        return [(n, self[n]) for n in self.names]


@TRANSFER_STRATEGIES.register_module()
class EWC(FinetuneAll):
    """Finetune all weights with an EWC penalty towards the source generator.

    Adds ``loss_ewc`` to the generator's losses; G and D both train (D from the source, its
    class-count-dependent head re-initialised).

    Args:
        source_checkpoint: the source synthesizer checkpoint (required).
        weight: lambda of the penalty. catgen's default 1.0 is meant for
            ``fisher_normalization='mean'``: on the SynthScenes generator (5e5 penalised
            weights) a uniform drift of 1e-3 then costs 0.5, small next to the OASIS
            adversarial loss (about 3 there), while weights with a large Fisher are held
            firmly. With 'none' the right scale depends on the discriminator (the paper's
            value is unconfirmed).
        num_fisher_samples: batches used to estimate the Fisher.
        fisher_batch_size: images per Fisher batch.
        log_likelihood: 'real' or 'label' (see the module doc).
        fisher_normalization: 'mean' (F / mean(F)) or 'none'.
        fisher_label_grid: cells per side of the random source label maps.
        fisher_image_size: (H, W) of the Fisher images; None uses ``generator.output_size``.
        fisher_seed: seed of the label maps and noise of the Fisher estimate.
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    def __init__(self, source_checkpoint=None, weight=1.0, num_fisher_samples=16,
                 fisher_batch_size=4, log_likelihood='real', fisher_normalization='mean',
                 fisher_label_grid=4, fisher_image_size=None, fisher_seed=0, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        if log_likelihood not in ('real', 'label'):
            raise ValueError(f"log_likelihood must be 'real' or 'label', got {log_likelihood!r}")
        if fisher_normalization not in ('mean', 'none'):
            raise ValueError(f"fisher_normalization must be 'mean' or 'none', "
                             f'got {fisher_normalization!r}')
        if int(num_fisher_samples) < 1 or int(fisher_batch_size) < 1:
            raise ValueError('num_fisher_samples and fisher_batch_size must be >= 1, got '
                             f'{num_fisher_samples} and {fisher_batch_size}')
        self.weight = weight
        self.num_fisher_samples = int(num_fisher_samples)
        self.fisher_batch_size = int(fisher_batch_size)
        self.log_likelihood = log_likelihood
        self.fisher_normalization = fisher_normalization
        self.fisher_label_grid = int(fisher_label_grid)
        self.fisher_image_size = fisher_image_size
        self.fisher_seed = fisher_seed
        self.fisher = None
        self.source_params = None

    # ------------------------------------------------------------------ set-up
    def adapt(self, synth):
        gen_state, disc_state = self.read_source_state()
        if not disc_state:
            raise KeyError(f'EWC estimates the Fisher with the source discriminator, but '
                           f'{self.source_checkpoint} has no "discriminator." weights.')
        gen = unwrap(synth.generator)
        fresh = set(self.class_param_names(gen, 'generator'))
        matched = {n: gen_state[n].detach().clone().to(p.device, p.dtype)
                   for n, p in gen.named_parameters()
                   if n in gen_state and tuple(gen_state[n].shape) == tuple(p.shape)
                   and n not in fresh}
        if not matched:
            raise ValueError('EWC: no generator parameter has the source shape; nothing to '
                             'penalise.')
        fisher = self.estimate_fisher(gen, unwrap(synth.discriminator), gen_state, disc_state,
                                      list(matched))
        self.source_params = TensorStore(matched)
        self.fisher = TensorStore(fisher)
        total = sum(f.numel() for f in fisher.values())
        mass = float(sum(f.sum() for f in fisher.values()))
        self.logger.info(f'EWC: Fisher of {len(fisher)} generator tensors ({total} entries) from '
                         f'{self.num_fisher_samples} x {self.fisher_batch_size} source samples; '
                         f'mean {mass / total:.3g} (fisher_normalization='
                         f'{self.fisher_normalization!r})')
        if mass == 0:
            self.logger.warning(
                'EWC: the Fisher is zero everywhere: the source discriminator\'s log-likelihood '
                'has no gradient w.r.t. the generator (saturated D or tanh output, e.g. an '
                'untrained source model), so the penalty is 0 and EWC reduces to finetune-all. '
                'Check source_checkpoint.')

    def estimate_fisher(self, generator, discriminator, gen_state, disc_state, names):
        """Diagonal Fisher ``{name: Tensor}`` of the source generator for the parameters
        ``names`` (see the module doc)."""
        n_src = source_num_classes(generator, gen_state)
        # G normalises with batch statistics, as in training (and whatever the state of the
        # checkpoint's running statistics); D in eval mode (frozen spectral-norm vectors)
        gen_src = source_shaped_copy(generator, gen_state).train()
        disc_src = source_shaped_copy(discriminator, disc_state)
        for module in (*gen_src.modules(), *disc_src.modules()):  # input checks read it
            if isinstance(getattr(module, 'num_classes', None), int):
                module.num_classes = n_src
        size = self.fisher_image_size or generator.output_size
        if size is None:
            raise ValueError(f'EWC needs fisher_image_size=(H, W) for '
                             f'{type(generator).__name__} (it has no output_size)')
        named = dict(gen_src.named_parameters())
        params = [named[n] for n in names]
        for p in params:
            p.requires_grad_(True)
        device = params[0].device
        rng = torch.Generator().manual_seed(self.fisher_seed)
        z_dim = int(generator.z_dim or 0)
        fisher = [torch.zeros_like(p) for p in params]
        for _ in range(self.num_fisher_samples):
            seg = random_label_maps(self.fisher_batch_size, n_src, size, self.fisher_label_grid,
                                    rng).to(device)
            z = (torch.randn(self.fisher_batch_size, z_dim, generator=rng).to(device)
                 if z_dim else None)
            img = gen_src(seg, z)
            ll = discriminator_log_likelihood(disc_src, img, seg, self.log_likelihood)
            grads = torch.autograd.grad(ll, params, allow_unused=True)
            for f, g in zip(fisher, grads):
                if g is not None:
                    f += g.detach() ** 2
        fisher = [f / self.num_fisher_samples for f in fisher]
        if self.fisher_normalization == 'mean':
            mean = torch.cat([f.reshape(-1) for f in fisher]).mean()
            if mean > 0:
                fisher = [f / mean for f in fisher]
        return dict(zip(names, fisher))

    # ------------------------------------------------------------------ training
    def penalty(self, generator):
        """``sum_i F_i (theta_i - theta_source_i)^2`` over the penalised parameters (no weight)."""
        own = dict(unwrap(generator).named_parameters())
        total = None
        for name, fisher in self.fisher.items():
            term = (fisher * (own[name] - self.source_params[name]) ** 2).sum()
            total = term if total is None else total + term
        return total

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        return dict(loss_ewc=self.weight * self.penalty(synth.generator))
