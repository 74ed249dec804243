"""A tiny mmseg UNet + FCNHead segmentor with seeded random weights, written to disk as a config
file and a checkpoint; shared by the segmenter tests."""
import torch

CONFIG = """
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[120.0, 110.0, 100.0],
                           std=[60.0, 50.0, 40.0], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='UNet', in_channels=3, base_channels=4, num_stages={stages},
                  strides={enc}, enc_num_convs={enc}, dec_num_convs={dec},
                  downsamples={down}, enc_dilations={enc}, dec_dilations={dec},
                  norm_cfg=norm_cfg),
    decode_head=dict(type='FCNHead', in_channels=4, in_index={deepest}, channels=4, num_convs=1,
                     concat_input=False, num_classes={num_classes}, norm_cfg=norm_cfg,
                     align_corners=False),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
"""


def tiny_mmseg(root, num_classes=4, classes=None, stages=2, bn_spread=None, name='tiny_mmseg',
               seed=0):
    """Write ``root/<name>.py`` and ``root/<name>.pth``; return (config path, checkpoint path).

    ``stages``: UNet stages, the decode head reading the deepest; ``bn_spread``: when given,
    BatchNorm running means are drawn from [-bn_spread, bn_spread] and variances from [0.5, 2]
    so that predictions vary; ``classes``: the checkpoint's meta dataset_meta classes."""
    from catgen.utils.setup_env import guarded_default_scope
    cfg = root / f'{name}.py'
    cfg.write_text(CONFIG.format(stages=stages, enc=(1,) * stages, dec=(1,) * (stages - 1),
                                 down=(True,) * (stages - 1), deepest=stages - 1,
                                 num_classes=num_classes))
    with guarded_default_scope(None):
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        torch.manual_seed(seed)
        model = MODELS.build(Config.fromfile(cfg).model)
    if bn_spread is not None:
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-bn_spread, bn_spread)
                    mod.running_var.uniform_(0.5, 2.0)
    ckpt = root / f'{name}.pth'
    meta = {'dataset_meta': {'classes': classes}} if classes else {}
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, ckpt)
    return cfg, ckpt
