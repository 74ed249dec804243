"""OASISDiscriminatorSegmenter: a trained OASIS discriminator used as a frozen source segmenter.

OASIS's U-Net discriminator classifies every pixel into ``[fake, don't care, class 1, ...,
class N_s]`` (docs/conventions.md). Every CAT run has one trained on the source data set, so it
serves as the source segmenter (``forward``: logits over the real source classes, the fake and
don't-care channels dropped) and as a source feature extractor (``feature_map``: blocks of its
U-Net, encoder ``body_down.*`` and decoder ``body_up.*``).

It is built from ``model.discriminator`` of the synthesizer config, with the
``discriminator.*`` weights of a catgen checkpoint (read with
:func:`catgen.utils.checkpoint.read_state_dict`).
"""
import torch
import torch.nn.functional as F

from catgen.registry import PRETRAINED
from catgen.utils.cache import FileRef

from .base import FrozenPretrained, check_file, file_or_text

__all__ = ['OASISDiscriminatorSegmenter']


def _dataset_class_names(cfg):
    """Real class names of the config's training data set, or None if it cannot be built."""
    ds_cfg = cfg.get('train_dataloader', {}).get('dataset')
    if ds_cfg is None:
        return None
    import catgen.datasets  # noqa: F401  (registers the data sets)
    from catgen.registry import DATASETS
    from catgen.utils.setup_env import guarded_default_scope
    ds_cfg = ds_cfg.to_dict() if hasattr(ds_cfg, 'to_dict') else dict(ds_cfg)
    ds_cfg.pop('pipeline', None)
    try:
        with guarded_default_scope('catgen'):
            ds = DATASETS.build(ds_cfg)
        return [str(c) for c in list(ds.metainfo['classes'])[1:]]
    except (FileNotFoundError, ValueError, KeyError):
        return None


@PRETRAINED.register_module()
class OASISDiscriminatorSegmenter(FrozenPretrained):
    """A frozen OASIS discriminator as segmenter and feature extractor.

    Args:
        config: the synthesizer config the checkpoint was trained with (path or
            :class:`mmengine.Config`), e.g. ``configs/oasis/oasis_synthscenes-source.py``.
        checkpoint: a catgen checkpoint holding ``discriminator.*`` weights (tools/train.py).
        prefix: the key prefix of the discriminator's weights (or a list tried in order).
        dontcare_index: the semantic channel of don't care (0 in catgen's channel space).
        layers: the blocks :meth:`feature_map` concatenates (default: the last decoder block,
            the features its class head reads).
        device: where the network goes.

    Attributes:
        classes: list[str] of the N_s real source class names (the checkpoint's
            ``meta.dataset_meta.classes`` or the config's training data set), or None.
        num_classes: N_s (the outputs of :meth:`forward`).
        disc: the OASIS discriminator.

    Raises:
        FileNotFoundError: the config or checkpoint does not exist (says how to make it).
        ValueError: the config has no OASIS discriminator, the checkpoint no ``prefix*`` keys,
            unknown ``layers``, or class names that do not fit the head.
    """

    kind = 'OASISDiscriminatorSegmenter'

    def __init__(self, config, checkpoint, prefix='discriminator.', dontcare_index=0,
                 layers=None, device='cpu'):
        super().__init__()
        from mmengine.config import Config

        import catgen.models  # noqa: F401  (registers the discriminators)
        from catgen.registry import MODELS
        from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load
        from catgen.utils.setup_env import guarded_default_scope
        self._check_args(config, checkpoint)
        cfg = config if isinstance(config, Config) else Config.fromfile(str(config))
        d_cfg = cfg.get('model', {}).get('discriminator')
        if not d_cfg or 'OASIS' not in str(d_cfg.get('type', '')):
            raise ValueError(f'{config}: model.discriminator is {d_cfg and d_cfg.get("type")!r}; '
                             f'the OASIS discriminator segmenter needs an OASIS synthesizer '
                             f'config (model.discriminator.type=\'OASISDiscriminator\').')
        with guarded_default_scope('catgen'):
            disc = MODELS.build(d_cfg)
        ckpt = safe_load(checkpoint, map_location='cpu')
        state = read_state_dict(ckpt, prefix=prefix, what=f'OASIS checkpoint {checkpoint}')
        load_state_dict_checked(disc, state, source=f'{checkpoint} ({prefix}*)')
        self.disc = disc
        n_sem = int(disc.num_classes)
        self.dontcare_index = int(dontcare_index)
        #: discriminator output channels kept by forward (fake = 0 and don't care dropped)
        self.keep = [1 + c for c in range(n_sem) if c != self.dontcare_index]
        self.num_classes = len(self.keep)
        self.classes = self._class_names(ckpt, cfg, n_sem, checkpoint)
        known = self.feature_levels()
        layers = layers or (f'body_up.{disc.num_blocks - 1}',)
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        unknown = [n for n in layers if n not in known]
        if unknown:
            raise ValueError(f'OASIS discriminator layers {unknown} do not exist; choose from '
                             f'{list(known)}.')
        self.layers = layers
        self.multiple = 2 ** disc.num_blocks
        self.key_args = dict(config=config if not isinstance(config, Config) else
                             (config.filename or str(config)), checkpoint=checkpoint,
                             prefix=prefix, dontcare_index=self.dontcare_index,
                             layers=list(layers))
        self.freeze()
        self.to(device)

    @staticmethod
    def _check_args(config, checkpoint):
        if config is None or checkpoint is None:
            raise ValueError("The OASIS discriminator needs config=<synthesizer config, e.g. "
                             "configs/oasis/oasis_synthscenes-source.py> and checkpoint=<catgen "
                             "checkpoint with discriminator.* weights, e.g. "
                             "zoo://oasis_synthscenes-source>.")
        check_file(checkpoint, 'OASIS checkpoint',
                   f'Train the source model with python tools/train.py {config}, or pass the '
                   f'path of an existing checkpoint.')
        if not hasattr(config, 'filename'):  # a path, not a Config
            check_file(config, 'synthesizer config', 'Pass the config the checkpoint was '
                       'trained with, e.g. configs/oasis/oasis_synthscenes-source.py.')

    @classmethod
    def _key_parts(cls, config, checkpoint, prefix='discriminator.', dontcare_index=0,
                   layers=None, device=None):
        cls._check_args(config, checkpoint)
        prefix = list(prefix) if isinstance(prefix, (list, tuple)) else prefix
        layers = [layers] if isinstance(layers, str) else (list(layers) if layers else None)
        return {'config': file_or_text(config), 'checkpoint': FileRef(checkpoint),
                'prefix': prefix, 'dontcare_index': int(dontcare_index), 'layers': layers}

    def cache_key(self):
        args = dict(self.key_args)
        if args['layers'] == [f'body_up.{self.disc.num_blocks - 1}']:
            args['layers'] = None  # the default, as a spec without layers= keys it
        return type(self).key_from_args(**args)

    def _class_names(self, ckpt, cfg, n_sem, checkpoint):
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        dmeta = meta.get('dataset_meta') if isinstance(meta, dict) else None
        if isinstance(dmeta, dict) and dmeta.get('classes'):
            names = [str(c) for c in list(dmeta['classes'])[1:]]
        else:
            names = _dataset_class_names(cfg)
        if names is None:
            return None
        if len(names) + 1 != n_sem:
            raise ValueError(f'{checkpoint}: the discriminator has {n_sem} semantic channels '
                             f'(don\'t care included) but the class list has {len(names)} real '
                             f'classes; pass class_map=[one source class per real channel].')
        full = ['<dontcare>', *names]  # channel c is full[c]
        return [full[c] for c in range(n_sem) if c != self.dontcare_index]

    def feature_levels(self):
        """Names of the blocks :meth:`feature_map` can read."""
        levels = getattr(self.disc, 'feature_levels', None)
        if callable(levels):
            return tuple(levels())
        n = self.disc.num_blocks
        return tuple([f'body_down.{i}' for i in range(n)] + [f'body_up.{i}' for i in range(n)])

    # ------------------------------------------------------------------ running
    @torch.no_grad()
    def forward(self, img):
        """Real-class logits.

        Args:
            img: ``uint8 Tensor[B, 3, H, W]`` RGB, any H, W (replicate-padded to a multiple of
                ``2 ** num_blocks`` and cropped back).

        Returns:
            ``float Tensor[B, N_s, H, W]``: logits of the real source classes (output ``k`` is
            ``classes[k]``).
        """
        h, w = img.shape[-2:]
        x = img.to(self.device).float() / 127.5 - 1.0
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode='replicate')
        logits = self.disc(x)
        return logits[:, self.keep, :h, :w]

    @torch.no_grad()
    def feature_map(self, img):
        """The ``layers`` blocks, resized to the largest of them and concatenated.

        Args:
            img: ``uint8 Tensor[B, 3, H, W]`` RGB, H and W divisible by ``2 ** num_blocks``.

        Returns:
            ``float Tensor[B, D, h, w]``.
        """
        h, w = img.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f'The OASIS discriminator needs image sides divisible by '
                             f'{self.multiple}; got {h}x{w}.')
        x = img.to(self.device).float() / 127.5 - 1.0
        _, feats = self.disc(x, return_features=True)
        maps = [feats[n] for n in self.layers]
        size = max((m.shape[-2:] for m in maps), key=lambda s: s[0] * s[1])
        maps = [m if m.shape[-2:] == size else
                F.interpolate(m, size=tuple(size), mode='bilinear', align_corners=False)
                for m in maps]
        return torch.cat(maps, dim=1)
