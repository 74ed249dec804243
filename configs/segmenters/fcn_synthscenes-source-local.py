# A LOCAL mmseg segmenter for the SynthScenes source domain: receptive field 3x3 pixels
# (one UNet stage of a single 3x3 conv, width 32, then an FCNHead of two 1x1 convs: a per-pixel
# MLP; mmseg model zoo classes), so every pixel is classified from its own colour and its
# immediate neighbours. Source val mIoU 92.5 (the context segmenter: 97.6). It is the
# segmenter of the segmenter-based affinity estimator (configs/affinity/segmenter_synthscenes.py):
# SynthScenes' target mixtures (meadow, shore, forest, overcast) draw EACH PIXEL from one of two
# source recipes, a salt-and-pepper texture that no source class has; the context segmenter
# (fcn_synthscenes-source.py, receptive field ~ the whole image) reads it as a third texture
# (fence, gravel), a local one counts the pixels of each recipe (docs/affinity.md: mixtures
# L1 0.60 with the context segmenter, 0.41 with receptive field 5, 0.30 with this one).
# Train (CPU, a few minutes):
#   python tools/train_segmenter.py configs/segmenters/fcn_synthscenes-source-local.py
# -> work_dirs/segmenters/fcn_synthscenes-source-local/iter_2000.pth
_base_ = ['./fcn_synthscenes-source.py']
model = dict(
    backbone=dict(_delete_=True, type='UNet', in_channels=3, base_channels=32, num_stages=1,
                  strides=(1, ), enc_num_convs=(1, ), dec_num_convs=(), downsamples=(),
                  enc_dilations=(1, ), dec_dilations=(), with_cp=False, conv_cfg=None,
                  norm_cfg={{_base_.norm_cfg}}, act_cfg=dict(type='ReLU'),
                  upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(in_channels=32, in_index=0, channels=32, num_convs=2, kernel_size=1))
work_dir = 'work_dirs/segmenters/fcn_synthscenes-source-local'
