"""Inference: build a synthesizer from a config and checkpoint, turn label maps into images."""
import os.path as osp

import numpy as np
import torch
import torch.nn.functional as F


def load_inference_config(config, cfg_options=None, has_checkpoint=True, random_weights=False):
    """A config ready to build a model for inference (test, synthesize).

    Checks the file, merges ``cfg_options``, fills in the class count
    (:func:`catgen.utils.config.fill_num_classes`) and builds ``cfg.model`` for inference
    (:func:`catgen.utils.config.inference_model_cfg`: a trained checkpoint is the whole model,
    the transfer strategy, its source checkpoint and its training data are not needed).

    Args:
        config: a config path (e.g. the one a training run dumped into its work dir) or an
            :class:`mmengine.Config`.
        cfg_options: dict of config overrides.
        has_checkpoint: whether trained weights will be loaded.
        random_weights: build the untrained model on purpose (see
            :func:`~catgen.utils.config.inference_model_cfg`).

    Returns:
        :class:`mmengine.Config`.
    """
    from mmengine.config import Config

    from catgen.utils.config import check_config_file, fill_num_classes, inference_model_cfg
    if isinstance(config, (str, bytes)) or hasattr(config, '__fspath__'):
        check_config_file(str(config))
        config = Config.fromfile(config)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    fill_num_classes(config)
    config.model = inference_model_cfg(config.model, has_checkpoint, random_weights)
    return config


def with_generator_from_ema(model, state):
    """A slim (model-zoo) checkpoint keeps only the EMA generator: its weights are the
    generator's too (inference uses the EMA generator). Other state dicts are returned as is."""
    ema = 'generator_ema.module.'
    if getattr(model, 'generator_ema', None) is None or any(k.startswith('generator.')
                                                            for k in state):
        return state
    state = dict(state)
    state.update({'generator.' + k[len(ema):]: v for k, v in list(state.items())
                  if k.startswith(ema)})
    return state


def load_trained_weights(model, checkpoint):
    """Load a training checkpoint's weights into an inference model, strictly.

    The transfer strategy's training state (``transfer.*``: frozen source copies, Fisher,
    latents) is not part of the inference model and is skipped; so are the discriminator's
    weights when the model has no discriminator. Anything else that does not fit raises one
    readable :class:`~catgen.utils.checkpoint.CheckpointMismatchError`.

    Args:
        model: the synthesizer (unwrapped from DDP inside).
        checkpoint: path of a checkpoint written by tools/train.py, or ``zoo://NAME`` (a slim
            model-zoo checkpoint: its EMA generator is loaded as the generator too).

    Returns:
        the checkpoint's ``meta`` dict.
    """
    from catgen.models.synthesizers.base_synthesizer import unwrap
    from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load
    from catgen.model_zoo.zoo import resolve_checkpoint
    checkpoint = resolve_checkpoint(checkpoint)  # zoo://NAME: its file, checksum verified
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist; pass a .pth written '
                                'by tools/train.py (work_dirs/<config name>/iter_*.pth).')
    model = unwrap(model)
    ckpt = safe_load(checkpoint, map_location='cpu')
    state = read_state_dict(ckpt, what=f'checkpoint {checkpoint}')
    skip = [] if getattr(model, 'transfer', None) is not None else ['transfer.']
    if getattr(model, 'discriminator', None) is None:
        skip.append('discriminator.')
    state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in skip)}
    state = with_generator_from_ema(model, state)
    load_state_dict_checked(model, state, strict=True, source=checkpoint)
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    return meta or {}


def init_synthesizer(config, checkpoint=None, device='cpu', cfg_options=None):
    """Build the synthesizer of ``config`` and load ``checkpoint`` (safely) into it.

    A trained checkpoint and its config are all that is needed: the config dumped into the
    run's work dir declares the architecture (e.g. CAT's affinity input layer), the checkpoint
    holds every weight; the source checkpoint and the training data are not read.

    Args:
        config: path of a catgen config (e.g. ``work_dirs/<run>/<config name>.py``), or a
            loaded :class:`mmengine.Config`.
        checkpoint: path of a checkpoint written by tools/train.py (or converted), or None for
            a training-free strategy (CATTrainingFree), which builds from its source.
        device: 'cpu', 'cuda', 'cuda:1' ...
        cfg_options: dict of config overrides.

    Returns:
        the synthesizer in eval mode, with ``.cfg`` set.
    """
    from catgen.registry import MODELS
    from catgen.utils.setup_env import setup_env

    setup_env()
    config = load_inference_config(config, cfg_options, has_checkpoint=checkpoint is not None)
    model = MODELS.build(config.model)
    if checkpoint is not None:
        meta = load_trained_weights(model, checkpoint)
        model.dataset_meta = meta.get('dataset_meta')
    model.cfg = config
    return model.to(device).eval()


def label_to_onehot(label, num_classes, ignore_index=255):
    """label: int Tensor[B, H, W] in channel space -> float Tensor[B, num_classes, H, W].

    Pixels equal to ``ignore_index`` get an all-zero vector; any other id outside
    ``[0, num_classes)`` is an error.
    """
    label = torch.as_tensor(label).long()
    bad = (label != ignore_index) & ((label < 0) | (label >= num_classes))
    if bad.any():
        ids = sorted(set(label[bad].unique().tolist()))
        raise ValueError(f'label ids {ids[:10]} are outside [0, {num_classes}) and not the ignore '
                         f'index {ignore_index}; the model has {num_classes} label channels.')
    valid = label != ignore_index
    onehot = F.one_hot(torch.where(valid, label, 0), num_classes).permute(0, 3, 1, 2).float()
    return onehot * valid[:, None].float()


def read_style_image(style_image):
    """A style image as ``float Tensor[1, 3, H, W]`` in [-1, 1].

    Args:
        style_image: a path (read as RGB), an ``np.uint8[H, W, 3]`` RGB array, or a float
            Tensor ``[3, H, W]`` / ``[B, 3, H, W]`` already in [-1, 1] (passed through).
    """
    from catgen.datasets.transforms.loading import read_rgb_image
    if isinstance(style_image, torch.Tensor):
        t = style_image.float()
        return t[None] if t.dim() == 3 else t
    if isinstance(style_image, (str, bytes)) or hasattr(style_image, '__fspath__'):
        style_image = read_rgb_image(style_image)
    arr = np.asarray(style_image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f'a style image must be a path, an np.uint8[H, W, 3] RGB array or a '
                         f'float Tensor[3, H, W] in [-1, 1]; got {arr.dtype}{list(arr.shape)}')
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).float()[None] / 127.5 - 1


def label_edges(label, instance=None):
    """The instance edge channel for label maps: ``float Tensor[B, 1, H, W]`` in {0, 1}.

    Edges of ``instance`` (int ``[H, W]`` or ``[B, H, W]``) when given; without instance maps
    the label map stands in for them (its class boundaries are the edges: catgen's choice for
    synthesis from a label map alone, a subset of the instance boundaries the model saw).
    """
    from catgen.datasets.transforms.loading import instance_edges
    src = label if instance is None else torch.as_tensor(np.asarray(instance)).long()
    if src.ndim == 2:
        src = src[None]
    if src.shape != label.shape:
        raise ValueError(f'instance maps {tuple(src.shape)} and label maps '
                         f'{tuple(label.shape)} must have the same size')
    edges = np.stack([instance_edges(m) for m in src.cpu().numpy()])
    return torch.from_numpy(edges).float()[:, None]


@torch.no_grad()
def synthesize(model, label, num_samples=1, seed=0, style_image=None, instance=None):
    """Generate images for one label map (or a batch of them).

    Args:
        model: a synthesizer (see :func:`init_synthesizer`).
        label: int array or Tensor [H, W] or [B, H, W] in channel space (0 = don't care).
        num_samples: images per label map, each with different (seeded) noise.
        seed: noise seed; the same seed gives the same images.
        style_image: None (random styles), or one image whose style every output takes (a
            path, an ``np.uint8[H, W, 3]`` RGB array, or a float Tensor in [-1, 1]); needs a
            SPADE model with a style encoder (``use_vae=True``). With ``num_samples > 1`` the
            samples differ by the reparameterisation noise only.
        instance: int array [H, W] or [B, H, W] of instance ids, for a model that reads
            instance edges (``data_preprocessor.instance_edges``); without it the label map's
            class boundaries are the edges. Ignored by other models.

    Returns:
        np.uint8 array [B, num_samples, H, W, 3] (B omitted when ``label`` is 2-D).
    """
    from catgen.models.synthesizers.base_synthesizer import to_uint8

    label = torch.as_tensor(np.asarray(label)).long()
    single = label.ndim == 2
    if single:
        label = label[None]
    device = next(model.parameters()).device
    num_classes = model.data_preprocessor.num_classes
    seg = label_to_onehot(label, num_classes)
    if getattr(model.data_preprocessor, 'instance_edges', False):
        seg = torch.cat([seg, label_edges(label, instance)], dim=1)
    seg = seg.to(device)
    kwargs = {}
    if style_image is not None:
        if not getattr(model, 'encodes_style', False):
            raise ValueError(f'{type(model).__name__} has no style encoder, so it cannot take a '
                             'style image: train SPADE with model.generator.use_vae=True, or '
                             'leave the style out (random styles).')
        kwargs['style'] = read_style_image(style_image).to(device)
    out = []
    for k in range(num_samples):
        ids = [seed * 1_000_003 + k * 10_007 + i for i in range(seg.shape[0])]
        out.append(to_uint8(model.synthesize(seg, sample_ids=ids, **kwargs)).cpu())
    images = torch.stack(out, 1).permute(0, 1, 3, 4, 2).numpy()
    return images[0] if single else images
