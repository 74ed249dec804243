"""EWC: elastic weight consolidation for few-shot GAN adaptation (Li et al., NeurIPS 2020).

Finetune everything, with a penalty that keeps the generator weights that mattered to the source
model near their source values:

    loss_ewc = weight * sum_i F_i * (theta_i - theta_source_i)^2

``F`` is the diagonal empirical Fisher information of the SOURCE generator, estimated once at
set-up from PER-SAMPLE squared gradients of the frozen source discriminator's log-likelihood on
source-generated images:

    F_i = 1/N sum_n (d loglik_n / d theta_i)^2,

with ``loglik_n`` the log-likelihood of generated image ``n`` alone and N
``num_fisher_samples``.

catgen's choices (the paper's scale of lambda and its sample count are unconfirmed):

- The source model is the full source checkpoint, class-count-dependent layers included: the
  generator and discriminator are copied and given the source tensors (see
  :func:`source_shaped_copy`). The generator copy runs in train mode (BatchNorm with batch
  statistics, as during training), the discriminator copy in eval mode.
- Per-sample gradients with batch statistics: each generator forward makes a batch of
  ``fisher_batch_size`` images (batch-norm statistics over that batch, as in training); then,
  for every image ``n`` of the batch, the discriminator scores that image alone and one backward
  pass gives ``d loglik_n / d theta`` through the whole batch's graph (the batch statistics
  depend on theta too). ``torch.func`` (``functional_call`` + ``vmap`` + ``grad``) is not used:
  under ``vmap`` every sample would be its own batch of one (per-sample batch-norm statistics,
  not training's), and train-mode batch norm / spectral norm update buffers in place, which
  ``vmap`` refuses. Cost: ``ceil(N / B)`` generator forwards, N discriminator forwards of one
  image, N backward passes (each through the generator's batch of B).
- Source label maps: from the SOURCE DATA when ``source_data`` is given (a data set config of
  the source domain, a built data set, or the path of the source model's training config, whose
  ``train_dataloader.dataset`` is used): its label maps in a random order drawn with
  ``fisher_seed`` (a new order each pass when N exceeds the data set), one-hot as the data
  preprocessor makes them (don't-care pixels on channel 0), resized (nearest) to the
  generator's size when theirs differs. Without ``source_data`` (documented fallback, logged as a
  warning): random blocky label maps, a ``fisher_label_grid x fisher_label_grid`` grid of
  source classes drawn uniformly from the real classes ``1 .. N_s - 1`` (channel 0 = don't care
  is never drawn), upsampled (nearest) to the generator's output size. Noise ``z ~ N(0, I)``;
  order, maps and noise all from ``fisher_seed``.
- Log-likelihood: the discriminator's own (model protocol, ``log_likelihood``) on one image.
  OASIS's N+1 discriminator (``log_likelihood='real'``, default): per pixel the log-probability
  that the pixel is real, i.e. of the union of the N real class channels,
  ``log(1 - p_fake) = logsumexp(logits[1:]) - logsumexp(logits)``, averaged over the image's
  pixels; ``'label'``: the log-probability of the class channel of the generating label map,
  ``log_softmax(logits)[argmax(seg) + 1]``, averaged over pixels that are not don't-care. A
  PatchGAN: ``mean(log sigmoid(final patch logits))`` over scales.
- ``fisher_normalization='mean'`` divides F by its mean over all penalised entries, which makes
  ``weight`` independent of the discriminator's scale; 'none' keeps the raw values.
- Loading as :class:`~catgen.transfer.finetune_all.FinetuneAll` (class channels restarted,
  everything trains). Only generator parameters copied from the source (same shape, outside
  the class slices) get the penalty; ``F`` and
  ``theta_source`` are buffers of the strategy (``transfer.fisher.*``, ``transfer.source_params.*``
  in checkpoints, dots in names written as ``__``).
"""
import copy
import os
import os.path as osp

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


def build_source_dataset(source_data):
    """The source data set of ``source_data``.

    Args:
        source_data: a data set config dict (built with catgen's ``DATASETS``, its pipeline
            dropped: only the label-map files are read), a built data set, or the path of a
            training config (``.py``) whose ``train_dataloader.dataset`` is the source data.

    Returns:
        the data set (with ``get_data_info(i)['seg_map_path']``).

    Raises:
        FileNotFoundError: no config file at that path, or the data set's files are missing.
        ValueError: the config has no ``train_dataloader.dataset``.
    """
    if isinstance(source_data, (str, os.PathLike)):
        from mmengine.config import Config
        path = str(source_data)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'EWC source_data={path!r} is not a file; pass the path of the source model\'s '
                f'training config (e.g. configs/oasis/oasis_synthscenes-source.py) or a data set '
                f"config dict(type='SynthScenesDataset', data_root='data/synthscenes', "
                f"domain='source', split='train').")
        ds_cfg = Config.fromfile(path).get('train_dataloader', {}).get('dataset')
        if ds_cfg is None:
            raise ValueError(f'EWC source_data: the config {path} has no '
                             f'train_dataloader.dataset; pass a data set config dict instead.')
        source_data = ds_cfg.to_dict() if hasattr(ds_cfg, 'to_dict') else dict(ds_cfg)
    if isinstance(source_data, dict):
        from catgen.datasets.class_names import build_dataset
        return build_dataset(source_data)
    return source_data


class SourceLabelMaps:
    """One-hot label maps of the source data, in a seeded random order, for the Fisher.

    Each pass over the data set follows a new permutation drawn from ``generator``; maps are
    one-hot in channel space as the data preprocessor makes them (don't-care pixels on channel
    0) and resized (nearest) to ``size`` when theirs differs. Decoded maps are cached.

    Args:
        dataset: a catgen data set whose data infos hold ``seg_map_path``, ``num_classes`` and
            ``label_shift`` (:class:`~catgen.datasets.base_sis_dataset.BaseSISDataset`).
        num_classes: label channels of the source generator (don't care included); must equal
            the data set's.
        size: ``(H, W)`` of the maps the generator reads.
        generator: ``torch.Generator`` drawing the order.

    Raises:
        ValueError: an empty data set, or a class count that is not the generator's.
    """

    def __init__(self, dataset, num_classes, size, generator):
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        self.name = type(dataset).__name__
        self.infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        if not self.infos:
            raise ValueError(f'EWC source_data: the data set {self.name} is empty; it should '
                             'hold the source domain\'s training label maps.')
        if 'seg_map_path' not in self.infos[0]:
            raise ValueError(f'EWC source_data: the data infos of {self.name} have no '
                             "'seg_map_path'; pass a catgen data set (BaseSISDataset).")
        n_data = int(self.infos[0].get('num_classes', num_classes))
        if n_data != num_classes:
            raise ValueError(
                f'EWC source_data: {self.name} has {n_data} label channels (don\'t care '
                f'included) but the source generator reads {num_classes}; source_data must be '
                f'the SOURCE domain\'s data set (the one the source checkpoint was trained on).')
        self.num_classes = int(num_classes)
        self.size = tuple(int(s) for s in size)
        self.generator = generator
        self._order = []
        self._cache = {}

    def __len__(self):
        return len(self.infos)

    def label(self, index):
        """``int64 Tensor[H, W]``: label map ``index`` in channel space, at ``self.size``."""
        if index not in self._cache:
            from catgen.datasets.transforms.loading import map_to_channel_space, read_label_map
            info = self.infos[index]
            raw = read_label_map(info['seg_map_path'])
            label = torch.from_numpy(map_to_channel_space(
                raw, self.num_classes, int(info.get('label_shift', 0)), info['seg_map_path']))
            if tuple(label.shape) != self.size:
                label = F.interpolate(label[None, None].float(), size=self.size,
                                      mode='nearest')[0, 0].long()
            self._cache[index] = label
        return self._cache[index]

    def next_indices(self, batch_size):
        """The data set indices of the next ``batch_size`` maps (new permutation per pass)."""
        out = []
        while len(out) < batch_size:
            if not self._order:
                self._order = torch.randperm(len(self.infos), generator=self.generator).tolist()
            out.append(self._order.pop(0))
        return out

    def __call__(self, batch_size):
        """``Tensor[batch_size, num_classes, H, W]``: the next one-hot maps."""
        label = torch.stack([self.label(i) for i in self.next_indices(batch_size)])
        return F.one_hot(label, self.num_classes).permute(0, 3, 1, 2).float()


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
        num_fisher_samples: N, the generated images whose per-sample squared gradients are
            averaged (one backward pass each).
        fisher_batch_size: images per generator forward (the batch whose batch-norm
            statistics they share); the last batch is generated in full, and only the images
            still needed are used.
        log_likelihood: 'real' or 'label' (see the module doc).
        fisher_normalization: 'mean' (F / mean(F)) or 'none'.
        source_data: the source domain's label maps for the Fisher: a data set config dict
            (e.g. ``dict(type='SynthScenesDataset', data_root='data/synthscenes',
            domain='source', split='train')``), a built data set, or the path of the source
            model's training config (its ``train_dataloader.dataset``). None: random blocky
            label maps (the fallback; a warning says so).
        fisher_label_grid: cells per side of the random label maps (without ``source_data``).
        fisher_image_size: (H, W) of the Fisher images; None uses ``generator.output_size``.
        fisher_seed: seed of the map order (or random maps) and the noise of the estimate.
        **kwargs: :class:`FinetuneAll` options (reinit_class_layers,
            source_generator_prefix, load_discriminator).
    """

    def __init__(self, source_checkpoint=None, weight=1.0, num_fisher_samples=64,
                 fisher_batch_size=4, log_likelihood='real', fisher_normalization='mean',
                 source_data=None, fisher_label_grid=4, fisher_image_size=None, fisher_seed=0,
                 **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        if log_likelihood not in ('real', 'label'):
            raise ValueError(f"log_likelihood must be 'real' or 'label', got {log_likelihood!r}")
        if fisher_normalization not in ('mean', 'none'):
            raise ValueError(f"fisher_normalization must be 'mean' or 'none', "
                             f'got {fisher_normalization!r}')
        if int(num_fisher_samples) < 1 or int(fisher_batch_size) < 1:
            raise ValueError('num_fisher_samples and fisher_batch_size must be >= 1, got '
                             f'{num_fisher_samples} and {fisher_batch_size}')
        if source_data is not None and not isinstance(source_data, (dict, str, os.PathLike)) \
                and not hasattr(source_data, 'get_data_info'):
            raise TypeError(f'EWC source_data must be None, a data set config dict, a data set '
                            f'or the path of a training config, got {type(source_data).__name__}')
        self.weight = weight
        self.num_fisher_samples = int(num_fisher_samples)
        self.fisher_batch_size = int(fisher_batch_size)
        self.log_likelihood = log_likelihood
        self.fisher_normalization = fisher_normalization
        self.source_data = source_data
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
                         f'{self.num_fisher_samples} per-sample gradients (batches of '
                         f'{self.fisher_batch_size}); mean {mass / total:.3g} '
                         f'(fisher_normalization={self.fisher_normalization!r})')
        if mass == 0:
            self.logger.warning(
                'EWC: the Fisher is zero everywhere: the source discriminator\'s log-likelihood '
                'has no gradient w.r.t. the generator (saturated D or tanh output, e.g. an '
                'untrained source model), so the penalty is 0 and EWC reduces to finetune-all. '
                'Check source_checkpoint.')

    def label_map_source(self, num_classes, size, rng):
        """A callable ``batch_size -> Tensor[B, num_classes, H, W]`` of source label maps: the
        source data's (:class:`SourceLabelMaps`) or, without ``source_data``, random blocky
        maps (:func:`random_label_maps`). Logs which one is used."""
        if num_classes == 0:  # an unconditional generator: empty label maps
            self.logger.info('EWC: unconditional generator: the Fisher is estimated on samples '
                             'from random latents (no label maps).')
            return lambda batch_size: torch.zeros(batch_size, 0, *size)
        if self.source_data is not None:
            maps = SourceLabelMaps(build_source_dataset(self.source_data), num_classes, size,
                                   rng)
            self.logger.info(f'EWC: Fisher label maps from the source data set {maps.name} '
                             f'({len(maps)} maps, seeded random order, fisher_seed='
                             f'{self.fisher_seed}).')
            return maps
        self.logger.warning(
            f'EWC: no source_data given: the Fisher uses random blocky label maps '
            f'({self.fisher_label_grid}x{self.fisher_label_grid} grids of the {num_classes - 1} '
            f'source classes), not the source domain\'s layouts. Set model.transfer.source_data '
            f'to the source data set config for the documented estimate.')
        grid = self.fisher_label_grid
        return lambda batch_size: random_label_maps(batch_size, num_classes, size, grid, rng)

    def estimate_fisher(self, generator, discriminator, gen_state, disc_state, names):
        """Diagonal empirical Fisher ``{name: Tensor}`` of the source generator for the
        parameters ``names``: the mean over ``num_fisher_samples`` generated images of the
        squared gradient of each image's own log-likelihood (see the module doc)."""
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
        maps = self.label_map_source(n_src, size, rng)
        z_dim = int(generator.z_dim or 0)
        fisher = [torch.zeros_like(p) for p in params]
        done = 0
        while done < self.num_fisher_samples:
            seg = maps(self.fisher_batch_size).to(device)
            z = (torch.randn(self.fisher_batch_size, z_dim, generator=rng).to(device)
                 if z_dim else None)
            img = gen_src(seg, z)  # one forward: the batch's statistics, as in training
            used = min(self.fisher_batch_size, self.num_fisher_samples - done)
            for n in range(used):  # per-sample gradient through the batch's graph
                ll = discriminator_log_likelihood(disc_src, img[n:n + 1], seg[n:n + 1],
                                                  self.log_likelihood)
                grads = torch.autograd.grad(ll, params, retain_graph=n < used - 1,
                                            allow_unused=True)
                for f, g in zip(fisher, grads):
                    if g is not None:
                        f += g.detach() ** 2
            done += used
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
