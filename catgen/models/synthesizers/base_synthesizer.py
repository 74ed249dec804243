"""The trainable whole of a conditional GAN: generator, discriminator, EMA, the two-step update."""
import contextlib
import inspect

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, ExponentialMovingAverage, is_model_wrapper

from catgen.registry import MODELS, TRANSFER_STRATEGIES
from catgen.structures import SISDataSample


@contextlib.contextmanager
def frozen(module):
    """Temporarily set ``requires_grad=False`` on every parameter of ``module``; restore after.

    The previous flags are restored one by one, so parts that a transfer strategy froze on
    purpose stay frozen.
    """
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


@contextlib.contextmanager
def no_grad_sync(module):
    """Inside, a DDP-wrapped ``module`` neither expects nor all-reduces gradients.

    For a forward pass through a part whose parameters are frozen for this update (the
    discriminator in the generator's update): DDP would otherwise wait, at its next forward,
    for the reduction of gradients that never come. No-op for a plain module.
    """
    if is_model_wrapper(module) and hasattr(module, 'no_sync'):
        with module.no_sync():
            yield
    else:
        yield


def build_network(cfg, num_classes, extra_label_channels=0):
    """Build a generator or discriminator config (a module or None passes through); a config
    without ``num_classes`` gets ``num_classes`` (the data preprocessor's).

    ``extra_label_channels`` (the data preprocessor's: SPADE's instance edge map, 1) is given
    to a config without it when it is not 0; a network class that does not take it cannot read
    the extra channel, which is an error naming it (0, the default, passes nothing).
    """
    if not isinstance(cfg, dict):
        return cfg
    cfg = dict(cfg)
    if cfg.get('num_classes', None) is None and num_classes is not None:
        cfg['num_classes'] = num_classes
    if extra_label_channels and cfg.get('extra_label_channels', None) is None:
        cls = MODELS.get(cfg['type']) if isinstance(cfg.get('type'), str) else cfg.get('type')
        params = inspect.signature(cls).parameters if cls is not None else None
        if params is not None and 'extra_label_channels' not in params and not any(
                p.kind == p.VAR_KEYWORD for p in params.values()):
            raise ValueError(
                f'the data preprocessor appends {extra_label_channels} channel(s) to the label '
                f'map (instance_edges=True), but {cfg["type"]} takes no extra_label_channels '
                'argument, so it cannot read them. Use a network that does (SPADEGenerator, '
                'MultiScalePatchGANDiscriminator) or set model.data_preprocessor.'
                'instance_edges=False (and with_instance=False in the pipelines).')
        cfg['extra_label_channels'] = extra_label_channels
    return MODELS.build(cfg)


def mix_seed(*values):
    """A 63-bit seed that is a pure function of the non-negative ints ``values``."""
    state = np.random.SeedSequence([int(v) for v in values]).generate_state(1, np.uint64)[0]
    return int(state) & (2 ** 63 - 1)


def unwrap(module):
    """The module inside a (DDP) model wrapper, or the module itself."""
    return module.module if is_model_wrapper(module) else module


def to_uint8(img):
    """Tensor[..., 3, H, W] in [-1, 1] -> uint8 Tensor of the same shape in [0, 255]."""
    return ((img.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class ConditionalGANSynthesizer(BaseModel):
    """Base class of catgen's GAN synthesizers (label map -> image).

    One ``train_step`` is a discriminator update followed by a generator update, each through
    its own optimizer wrapper of the :class:`~mmengine.optim.OptimWrapperDict` (keys
    ``generator`` and ``discriminator``), then an EMA update of the generator. Subclasses define
    :meth:`discriminator_loss` and :meth:`generator_loss`, each returning a dict of named scalar
    losses whose keys start with ``loss_``.

    Args:
        generator: config (or module) of the generator (``forward(seg, z) -> img``; the model
            protocol's :class:`~catgen.models.protocol.TransferableGenerator`). A config
            without ``num_classes`` gets the data preprocessor's (the class count is written
            once).
        discriminator: config (or module) of the discriminator; None for inference-only models.
            A config without ``num_classes`` gets the data preprocessor's.
        data_preprocessor: config of the data preprocessor (``SISDataPreprocessor``).
        ema_momentum: weight of the new value in the EMA update of the generator, i.e.
            ``1 - decay`` (MMEngine's convention): 1e-4 means decay 0.9999. None disables EMA.
        ema_start_iter: iteration from which the EMA is updated (before it, it copies G).
        nonfinite: what a non-finite loss does: 'raise' stops training with a message naming
            the loss term and the iteration; 'skip' skips that update and logs it.
        eval_seed: seed of the noise used in val/test; sample ``i`` always gets the same noise.
        train_noise: the generator's noise in training: 'random' (default: drawn from the global
            RNG; under DDP every rank draws its own, see ``randomness.diff_rank_seed``) or
            'per_sample' (the noise of data sample ``i`` at iteration ``t`` is a pure function
            of ``(train_noise_seed, t, i)``: the same whatever the number of processes, so that
            W processes with batch B train exactly as one with batch W*B; the rest of the
            step's randomness, e.g. LabelMix's per-class bits, comes from the global RNG seeded
            with ``(train_noise_seed, t)``, the same on every rank). 'per_sample' needs the
            data samples' ``sample_idx`` (set by the data sets).
        train_noise_seed: the seed of 'per_sample' training noise.
        num_eval_samples: images generated per label map in val/test (diversity metrics use >1).
        transfer: config of a transfer strategy (``TRANSFER_STRATEGIES``, e.g.
            ``dict(type='CAT', source_checkpoint=...)``); None trains G and D as built.
        init_cfg: MMEngine weight-initialisation config.
    """

    def __init__(self, generator, discriminator=None, data_preprocessor=None, ema_momentum=1e-4,
                 ema_start_iter=0, nonfinite='raise', eval_seed=0, num_eval_samples=1,
                 train_noise='random', train_noise_seed=0, transfer=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if nonfinite not in ('raise', 'skip'):
            raise ValueError(f"nonfinite must be 'raise' or 'skip', got {nonfinite!r}")
        if train_noise not in ('random', 'per_sample'):
            raise ValueError(f"train_noise must be 'random' or 'per_sample', got {train_noise!r}")
        # the strategy first: it checks its source checkpoint and data before the (large) build
        transfer = (TRANSFER_STRATEGIES.build(transfer) if isinstance(transfer, dict)
                    else transfer)
        num_classes = getattr(self.data_preprocessor, 'num_classes', None)
        extra = getattr(self.data_preprocessor, 'extra_label_channels', 0)
        self.generator = build_network(generator, num_classes, extra)
        self.discriminator = build_network(discriminator, num_classes, extra)
        self.transfer = transfer
        if self.transfer is not None:
            # source weights, replaced layers, frozen parts: before the EMA copies G
            self.transfer.setup(self)
        self.ema_momentum = ema_momentum
        self.generator_ema = None
        if ema_momentum is not None:
            if not 0 < ema_momentum <= 1:
                raise ValueError(f'ema_momentum is 1 - decay and must be in (0, 1], got '
                                 f'{ema_momentum} (for decay 0.9999 write ema_momentum=1e-4)')
            # update_buffers=False: BatchNorm statistics are copied from the generator.
            self.generator_ema = ExponentialMovingAverage(
                self.generator, momentum=ema_momentum, update_buffers=False)
        self.ema_start_iter = ema_start_iter
        self.nonfinite = nonfinite
        self.eval_seed = eval_seed
        self.num_eval_samples = num_eval_samples
        self.train_noise = train_noise
        self.train_noise_seed = int(train_noise_seed)
        self._step = None  # (iteration, sample ids, noise draws so far) inside train_step

    # ------------------------------------------------------------------ what subclasses define
    def discriminator_loss(self, inputs):
        """inputs: the data preprocessor's dict (img, label, seg) -> dict of named losses."""
        raise NotImplementedError

    def generator_loss(self, inputs):
        """inputs: the data preprocessor's dict (img, label, seg) -> dict of named losses."""
        raise NotImplementedError

    # ------------------------------------------------------------------ parts and parameters
    def optim_params(self, part):
        """Parameters that the optimizer wrapper ``part`` ('generator'|'discriminator') updates."""
        if self.transfer is not None:
            return self.transfer.optim_params(self, part)
        module = getattr(self, part, None)
        if module is None:
            raise ValueError(f'{type(self).__name__} has no part named {part!r}')
        return unwrap(module).parameters()

    @property
    def eval_generator(self):
        """The generator used for inference: the EMA copy when there is one."""
        if self.generator_ema is not None:
            return self.generator_ema.module
        return unwrap(self.generator)

    def _pixel_noise(self):
        """The generator's ``spatial_noise`` when it draws per-pixel noise
        (``pixel_noise_std > 0``), else None."""
        gen = unwrap(self.generator)
        if float(getattr(gen, 'pixel_noise_std', 0) or 0) > 0:
            return gen.spatial_noise
        return None

    def full_noise(self, z):
        """``z`` as the generator will use it: for a generator with per-pixel noise
        (``pixel_noise_std > 0``) the full 3D noise ``Tensor[B, z_dim, H, W]`` (per-pixel part
        drawn from the global RNG), so that every network given this ``z`` in a step (the
        generator, a strategy's source anchor) sees the same noise; otherwise ``z`` itself."""
        spatial = self._pixel_noise()
        if spatial is None or z is None or z.dim() != 2:
            return z
        return spatial(z)

    def sample_noise(self, batch_size, sample_ids=None, device=None):
        """Noise ``Tensor[B, z_dim]`` (None if the generator takes none).

        With ``sample_ids`` the noise of sample ``i`` is a pure function of
        ``(eval_seed, i)``: fixed inputs across iterations and runs (for a generator with
        per-pixel noise, its full 3D noise ``Tensor[B, z_dim, H, W]``, per-pixel part included).
        Without them it is random, except inside a training step with
        ``train_noise='per_sample'`` for a batch of the step's size (e.g. a transfer strategy's
        extra noise): then it is per-sample noise too.
        """
        z_dim = getattr(unwrap(self.generator), 'z_dim', 0)
        if not z_dim:
            return None
        device = device or next(self.parameters()).device
        if sample_ids is None:
            if self._step is not None and batch_size == len(self._step[1]):
                return self._per_sample_training_noise(device)
            return torch.randn(batch_size, z_dim, device=device)
        spatial = self._pixel_noise()
        rows = []
        for i in sample_ids:
            gen = torch.Generator().manual_seed(int(self.eval_seed) * 1_000_003 + int(i))
            row = torch.randn(z_dim, generator=gen)
            rows.append(row if spatial is None else spatial(row[None], generator=gen)[0])
        return torch.stack(rows).to(device)

    @torch.no_grad()
    def refresh_ema_norm_stats(self, batches, seed=0):
        """Recompute the batch-norm running statistics of the EMA generator, as the official
        OASIS code does before it evaluates, samples or saves its EMA generator
        (``utils.update_EMA``): train-mode forward passes without gradients over training
        batches, each BatchNorm's momentum as configured. The EMA weights are an average of G's,
        so G's running statistics (which MMEngine's EMA copies) do not match them. Train mode
        also advances the power iteration of the EMA's spectral norms on the EMA weights, as in
        the official code.

        The global random state is unchanged afterwards (the noise comes from a forked RNG
        seeded with ``seed``): refreshing does not alter the training run.

        Args:
            batches: iterable of data batches as the dataloader yields them (label maps are
                read; images are not needed).
            seed: seed of the noise fed to the EMA generator.

        Returns:
            the number of batches run (0 without EMA or without batch norm in it).
        """
        if self.generator_ema is None:
            return 0
        ema = self.generator_ema.module
        if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
                   for m in ema.modules()):
            return 0
        device = next(ema.parameters()).device
        z_dim = getattr(unwrap(self.generator), 'z_dim', 0)
        was_training = ema.training
        count = 0
        with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
            torch.manual_seed(seed)
            ema.train()
            try:
                for data in batches:
                    seg = self.data_preprocessor(data, False)['inputs']['seg']
                    # this rank's rows of one global draw: W processes refresh as one
                    rank, world = get_dist_info()
                    b = seg.shape[0]
                    z = (torch.randn(b * world, z_dim)[rank * b:(rank + 1) * b].to(seg.device)
                         if z_dim else None)
                    ema(seg, z)
                    count += 1
            finally:
                ema.train(was_training)
        return count

    @torch.no_grad()
    def synthesize(self, seg, z=None, sample_ids=None):
        """seg: float Tensor[B, C, H, W] one-hot -> image Tensor[B, 3, H, W] in [-1, 1]."""
        if z is None:
            z = self.sample_noise(seg.shape[0], sample_ids, seg.device)
        return self.eval_generator(seg, z)

    @property
    def adversarial_weight(self):
        """Weight of the adversarial generator terms (the transfer strategy's, else 1)."""
        return 1.0 if self.transfer is None else float(self.transfer.adversarial_weight)

    def training_noise(self, inputs):
        """The generator's noise in a training step, ``Tensor[B, z_dim]`` (None for a generator
        without noise): the strategy's if it has one; else per-sample noise
        (``train_noise='per_sample'``); else drawn from the global RNG."""
        z = None if self.transfer is None else self.transfer.generator_noise(self, inputs)
        if z is None:
            z = self.sampled_training_noise(inputs)
        return z

    def sampled_training_noise(self, inputs):
        """:meth:`training_noise` without the strategy's: per-sample noise
        (``train_noise='per_sample'``) or drawn from the global RNG; None without noise."""
        z = None
        if self._step is not None and self.train_noise == 'per_sample':
            z = self._per_sample_training_noise(inputs['seg'].device)
        if z is None:
            seg = inputs['seg']
            z_dim = getattr(unwrap(self.generator), 'z_dim', 0)
            if z_dim:
                z = torch.randn(seg.shape[0], z_dim, device=seg.device, dtype=seg.dtype)
        return z

    def generate_for_training(self, inputs, grad=True):
        """The step's one generator forward: ``(fake, z, feats)``.

        ``feats`` (the generator's feature levels from the same forward pass) is asked for only
        when the transfer strategy reads them (``needs_generator_features``), else None.
        Under ``grad=False`` no graph is built (the discriminator's update).
        """
        seg = inputs['seg']
        z = self.full_noise(self.training_noise(inputs))
        want = grad and self.transfer is not None and self.transfer.needs_generator_features
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            out = self.generator(seg, z, return_features=True) if want else self.generator(seg, z)
        fake, feats = out if want else (out, None)
        return fake, z, feats

    def _per_sample_training_noise(self, device):
        """``Tensor[B, z_dim]``: row ``k`` a function of (seed, iteration, sample id, draw).

        ``draw`` counts the noise batches drawn so far in this step (D's update, G's update,
        ...), so that every call gets fresh noise, identically on every rank.
        """
        z_dim = getattr(unwrap(self.generator), 'z_dim', 0)
        if not z_dim:
            return None
        iteration, ids, draw = self._step
        self._step = (iteration, ids, draw + 1)
        rows = [torch.randn(z_dim, generator=torch.Generator().manual_seed(
            mix_seed(self.train_noise_seed, iteration, i, draw))) for i in ids]
        return torch.stack(rows).to(device)

    @contextlib.contextmanager
    def _training_randomness(self, inputs):
        """Set up the step's randomness: with ``train_noise='per_sample'`` the per-sample noise
        state, and the global RNG (forked, restored afterwards) seeded by (seed, iteration)."""
        if self.train_noise != 'per_sample':
            yield
            return
        ids = inputs.get('sample_idx')
        if ids is None or bool((ids < 0).any()):
            got = 'no data samples' if ids is None else f'sample_idx {ids.tolist()} (-1: none)'
            raise ValueError("train_noise='per_sample' needs every data sample's sample_idx "
                             '(its index in the data set, which MMEngine data sets put in the '
                             f"metainfo); got {got}. Use train_noise='random' for data without "
                             'indices.')
        iteration = int(MessageHub.get_current_instance().get_info('iter', 0))
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            seed = mix_seed(self.train_noise_seed, iteration)
            torch.random.default_generator.manual_seed(seed)
            if devices:
                torch.cuda.manual_seed(seed)
            self._step = (iteration, [int(i) for i in ids.tolist()], 0)
            try:
                yield
            finally:
                self._step = None

    def transfer_losses(self, part, inputs, fake, z=None, feats=None):
        """The transfer strategy's extra loss terms for ``part`` (empty without a strategy).

        ``fake``, ``z``, ``feats``: the step's generator output, its noise and (generator part,
        when the strategy asks) its feature levels.
        """
        if self.transfer is None:
            return {}
        if part == 'generator':
            return self.transfer.generator_losses(self, inputs, fake, z=z, feats=feats)
        return self.transfer.discriminator_losses(self, inputs, fake.detach(), z=z)

    # ------------------------------------------------------------------ training
    def _check_finite(self, losses):
        """True if every loss is finite; otherwise raise or (nonfinite='skip') return False."""
        for name, value in losses.items():
            if not torch.isfinite(value).all():
                iteration = MessageHub.get_current_instance().get_info('iter', 'unknown')
                if self.nonfinite == 'skip':
                    MessageHub.get_current_instance().update_scalar('train/skipped_steps', 1)
                    return False
                raise FloatingPointError(
                    f'Non-finite loss "{name}" = {float(value.detach().float().mean())} at '
                    f'iteration {iteration}: training stopped; the checkpoints already in the '
                    'work dir are untouched. Lower the learning rate, check the data (label ids, '
                    'NaN pixels), or set model.nonfinite="skip" to skip such updates.')
        return True

    def _update(self, wrapper, module, loss_fn, inputs):
        with wrapper.optim_context(module):
            losses = loss_fn(inputs)
        total, log_vars = self.parse_losses(losses)
        if self._check_finite(losses):
            wrapper.update_params(total)
        else:
            wrapper.zero_grad()
        # detached: the logged values must not keep the step's autograd graph alive
        return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in log_vars.items()}

    def training_inputs(self, data):
        """The data preprocessor's ``inputs`` of a training batch, plus ``sample_idx`` (per-image
        ids, for methods with per-image state such as BSA's latents) when there are data
        samples."""
        data = self.data_preprocessor(data, True)
        inputs = data['inputs']
        samples = data.get('data_samples') or []
        if samples:
            inputs['sample_idx'] = torch.tensor(
                [ds.metainfo.get('sample_idx', -1) for ds in samples], device=inputs['seg'].device)
        return inputs

    def update_ema(self):
        """The EMA update of the generator after a training step (a copy before
        ``ema_start_iter``)."""
        if self.generator_ema is None:
            return
        iteration = MessageHub.get_current_instance().get_info('iter', 0)
        if iteration < self.ema_start_iter:
            self.generator_ema.module.load_state_dict(unwrap(self.generator).state_dict())
        else:
            self.generator_ema.update_parameters(unwrap(self.generator))

    def train_step(self, data, optim_wrapper):
        """One discriminator update, one generator update, one EMA update."""
        inputs = self.training_inputs(data)
        log_vars = {}
        # under DDP (SeparateDistributedDataParallel) self.generator / self.discriminator are
        # the DDP wrappers: calling them (in the losses) makes backward average the gradients
        with self._training_randomness(inputs):
            if self.adversarial_weight > 0:  # no adversarial term, no discriminator to train
                log_vars.update(self._update(optim_wrapper['discriminator'], self.discriminator,
                                             self.discriminator_loss, inputs))
            with frozen(self.discriminator), no_grad_sync(self.discriminator):
                log_vars.update(self._update(optim_wrapper['generator'], self.generator,
                                             self.generator_loss, inputs))
        log_vars.pop('loss', None)
        self.update_ema()
        return log_vars

    # ------------------------------------------------------------------ inference
    def conditioning(self, inputs):
        """What the model synthesizes from, of a preprocessed batch: ``(label map int64
        Tensor[B, H, W] or None, one-hot seg Tensor[B, C, H, W])`` (the dense ones here; a
        model with sparse inputs returns the scribbles)."""
        return inputs.get('label'), inputs['seg']

    def forward(self, inputs, data_samples=None, mode='tensor'):
        """mode 'tensor': images Tensor[B, 3, H, W] in [-1, 1]; 'predict': list[SISDataSample]
        with ``fake_img`` (uint8 [3, H, W], or [K, 3, H, W] with ``num_eval_samples=K>1``),
        ``gt_img`` and ``gt_label``."""
        _, seg = self.conditioning(inputs)
        ids = None
        if data_samples is not None:
            ids = [ds.metainfo.get('sample_idx', i) for i, ds in enumerate(data_samples)]
        if mode == 'tensor':
            return self.synthesize(seg, sample_ids=ids)
        if mode == 'loss':
            raise NotImplementedError('GAN synthesizers train through train_step, not loss mode.')
        if mode != 'predict':
            raise ValueError(f"mode must be 'tensor' or 'predict', got {mode!r}")
        ids = ids if ids is not None else list(range(seg.shape[0]))
        fakes = []
        for k in range(self.num_eval_samples):
            sample_ids = [i * self.num_eval_samples + k for i in ids]
            fakes.append(to_uint8(self.synthesize(seg, sample_ids=sample_ids)).cpu())
        fakes = torch.stack(fakes, dim=1)  # [B, K, 3, H, W]
        out = []
        for i in range(seg.shape[0]):
            ds = data_samples[i] if data_samples is not None else SISDataSample()
            ds = ds if isinstance(ds, SISDataSample) else SISDataSample(metainfo=dict(ds.metainfo))
            ds.fake_img = fakes[i, 0] if self.num_eval_samples == 1 else fakes[i]
            if 'img' in inputs:
                ds.gt_img = to_uint8(inputs['img'][i]).cpu()
            if 'label' in inputs:
                ds.gt_label = inputs['label'][i].cpu()
            out.append(ds)
        return out
