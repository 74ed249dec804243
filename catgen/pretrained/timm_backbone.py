"""TimmBackbone: a frozen timm image backbone with local weights, as a feature-map extractor.

The model is created with ``timm.create_model(model_name, pretrained=False, num_classes=0)``
and its weights are read from a local file (``.pth`` / ``.bin`` through
:func:`catgen.utils.checkpoint.read_state_dict`, or ``.safetensors``); nothing is downloaded.
``forward`` returns patch tokens reshaped to the patch grid (ViT; prefix tokens dropped) or the
last feature map (CNN).
"""
from pathlib import Path

import torch
import torch.nn.functional as F

from catgen.registry import PRETRAINED
from catgen.utils.cache import FileRef

from .base import FrozenPretrained

__all__ = ['TimmBackbone']


def _input_size(size):
    if size is None:
        return None
    return (int(size), int(size)) if isinstance(size, (int, float)) else tuple(map(int, size))


@PRETRAINED.register_module()
class TimmBackbone(FrozenPretrained):
    """A frozen timm model's ``forward_features`` as a spatial feature map.

    Args:
        model_name: the timm architecture, e.g. ``'vit_small_patch16_224.dino'``.
        checkpoint: the LOCAL weights file (``.pth``, ``.bin`` or ``.safetensors``; MMEngine /
            DINO wrappers ``state_dict`` / ``model`` / ``teacher`` / ``student`` and ``module.``
            / ``backbone.`` prefixes are unwrapped). A missing file is a FileNotFoundError that
            says where to put it.
        input_size: side or ``(h, w)`` images are resized to (default: the model's).
        mean, std: per-channel normalisation of ``[0, 1]`` RGB (default: the model's).
        device: where the network goes.

    Raises:
        FileNotFoundError: no weights file; ImportError: timm is not installed.
    """

    kind = 'TimmBackbone'

    def __init__(self, model_name, checkpoint, input_size=None, mean=None, std=None,
                 device='cpu'):
        super().__init__()
        self._check_args(model_name, checkpoint)
        try:
            import timm
        except ImportError as err:
            raise ImportError('The timm backbone needs timm: pip install timm (listed in '
                              'requirements/optional.txt).') from err
        from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict
        model = timm.create_model(model_name, pretrained=False, num_classes=0)
        if str(checkpoint).endswith('.safetensors'):
            from safetensors.torch import load_file
            raw = load_file(str(checkpoint), device='cpu')
        else:
            raw = str(checkpoint)
        state = read_state_dict(raw, strip_prefixes=('module.', 'backbone.'),
                                what=f'timm checkpoint of {model_name}')
        expected = model.state_dict()
        if any(k not in state for k in expected):  # only the removed head may be absent
            load_state_dict_checked(model, state, strict=True, source=str(checkpoint))
        load_state_dict_checked(model, {k: v for k, v in state.items() if k in expected},
                                strict=True, source=str(checkpoint))
        self.model = model
        data_cfg = timm.data.resolve_data_config({}, model=model)
        self.input_size = _input_size(input_size) or tuple(data_cfg['input_size'][1:])
        self.register_buffer('mean', torch.tensor(mean or data_cfg['mean']).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std or data_cfg['std']).view(1, 3, 1, 1),
                             persistent=False)
        self.num_prefix_tokens = int(getattr(model, 'num_prefix_tokens', 0))
        self.model_name = model_name
        self.key_args = dict(model_name=model_name, checkpoint=checkpoint,
                             input_size=None if input_size is None else list(
                                 _input_size(input_size)),
                             mean=None if mean is None else list(mean),
                             std=None if std is None else list(std))
        self.freeze()
        self.to(device)

    @staticmethod
    def _check_args(model_name, checkpoint):
        if not model_name:
            raise ValueError("A timm backbone needs model_name (e.g. "
                             "'vit_small_patch16_224.dino') and checkpoint=<local weights file>.")
        if checkpoint is None or not Path(checkpoint).is_file():
            where = Path(checkpoint).resolve() if checkpoint else \
                Path('checkpoints') / 'timm' / f'{model_name}.safetensors'
            raise FileNotFoundError(
                f'timm weights for {model_name!r} not found: {checkpoint}. Nothing is downloaded '
                f'on this machine: on one with network access get the weights (e.g. the '
                f'model.safetensors of timm/{model_name} on the Hugging Face hub, or a DINO '
                f'.pth) and put the file at {where} (then pass checkpoint={str(where)!r}).')

    @classmethod
    def _key_parts(cls, model_name, checkpoint, input_size=None, mean=None, std=None,
                   device=None):
        cls._check_args(model_name, checkpoint)
        size = _input_size(input_size)
        return {'model_name': model_name, 'checkpoint': FileRef(checkpoint),
                'input_size': None if size is None else list(size),
                'mean': None if mean is None else list(mean),
                'std': None if std is None else list(std)}

    @torch.no_grad()
    def forward(self, img):
        """Feature map.

        Args:
            img: ``uint8 Tensor[B, 3, H, W]`` RGB, 0..255 (resized to ``input_size``).

        Returns:
            ``float Tensor[B, D, h, w]`` (ViT: the patch grid; CNN: the last stage).
        """
        x = img.to(self.device).float() / 255.0
        if tuple(x.shape[-2:]) != tuple(self.input_size):
            x = F.interpolate(x, size=tuple(self.input_size), mode='bilinear',
                              align_corners=False)
        x = (x - self.mean.to(x)) / self.std.to(x)
        f = self.model.forward_features(x)
        if f.ndim == 3:  # tokens [B, prefix + h*w, D]
            f = f[:, self.num_prefix_tokens:]
            grid = getattr(getattr(self.model, 'patch_embed', None), 'grid_size', None)
            if grid is None or grid[0] * grid[1] != f.shape[1]:
                side = int(round(f.shape[1] ** 0.5))
                grid = (side, f.shape[1] // side)
            return f.transpose(1, 2).reshape(f.shape[0], f.shape[2], *grid)
        nf = self.model.num_features
        if f.ndim == 4 and f.shape[1] != nf and f.shape[-1] == nf:
            f = f.permute(0, 3, 1, 2)  # NHWC models
        return f

    def feature_map(self, img):
        """Same as :meth:`forward` (the backbone interface)."""
        return self(img)
