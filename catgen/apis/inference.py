"""Inference: build a synthesizer from a config and checkpoint, turn label maps into images."""
import os.path as osp

import numpy as np
import torch
import torch.nn.functional as F


def init_synthesizer(config, checkpoint=None, device='cpu', cfg_options=None):
    """Build the synthesizer of ``config`` and load ``checkpoint`` (safely) into it.

    Args:
        config: path of a catgen config, or a loaded :class:`mmengine.Config`.
        checkpoint: path of a checkpoint written by tools/train.py (or converted), or None to
            keep the weights the model builds with (e.g. training-free CAT).
        device: 'cpu', 'cuda', 'cuda:1' ...
        cfg_options: dict of config overrides.

    Returns:
        the synthesizer in eval mode, with ``.cfg`` set.
    """
    from mmengine.config import Config

    from catgen.registry import MODELS
    from catgen.utils.checkpoint import load_state_dict_checked, safe_load
    from catgen.utils.config import check_config_file
    from catgen.utils.setup_env import setup_env

    setup_env()
    if isinstance(config, (str, bytes)) or hasattr(config, '__fspath__'):
        check_config_file(str(config))
        config = Config.fromfile(config)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    model = MODELS.build(config.model)
    if checkpoint is not None:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'checkpoint {checkpoint} does not exist; pass a .pth written '
                                    'by tools/train.py (work_dirs/<config name>/iter_*.pth).')
        ckpt = safe_load(checkpoint, map_location='cpu')
        state = ckpt.get('state_dict', ckpt)
        load_state_dict_checked(model, state, strict=True)
        model.dataset_meta = ckpt.get('meta', {}).get('dataset_meta')
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


@torch.no_grad()
def synthesize(model, label, num_samples=1, seed=0):
    """Generate images for one label map (or a batch of them).

    Args:
        model: a synthesizer (see :func:`init_synthesizer`).
        label: int array or Tensor [H, W] or [B, H, W] in channel space (0 = don't care).
        num_samples: images per label map, each with different (seeded) noise.
        seed: noise seed; the same seed gives the same images.

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
    seg = label_to_onehot(label, num_classes).to(device)
    out = []
    for k in range(num_samples):
        ids = [seed * 1_000_003 + k * 10_007 + i for i in range(seg.shape[0])]
        out.append(to_uint8(model.synthesize(seg, sample_ids=ids)).cpu())
    images = torch.stack(out, 1).permute(0, 1, 3, 4, 2).numpy()
    return images[0] if single else images
