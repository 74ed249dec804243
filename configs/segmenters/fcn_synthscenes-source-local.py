# A LOCAL mmseg segmenter for the SynthScenes source domain: receptive field 5x5 pixels
# (one UNet stage of two 3x3 convs, width 32, and a 1x1 FCNHead; mmseg model zoo classes), so
# every pixel is classified from its own colour and its immediate neighbours. It is the
# segmenter of the segmenter-based affinity estimator (configs/affinity/segmenter_synthscenes.py):
# SynthScenes' target mixtures (meadow, shore, forest, overcast) draw EACH PIXEL from one of two
# source recipes, a salt-and-pepper texture that no source class has; the context segmenter
# (fcn_synthscenes-source.py, receptive field ~ the whole image) reads it as a third texture
# (fence, gravel), a local one counts the pixels of each recipe (docs/affinity.md).
# Train (CPU, a few minutes):
#   python tools/train_segmenter.py configs/segmenters/fcn_synthscenes-source-local.py
# -> work_dirs/segmenters/fcn_synthscenes-source-local/iter_2000.pth
_base_ = ['./fcn_synthscenes-source.py']
model = dict(
    backbone=dict(_delete_=True, type='UNet', in_channels=3, base_channels=32, num_stages=1,
                  strides=(1, ), enc_num_convs=(2, ), dec_num_convs=(), downsamples=(),
                  enc_dilations=(1, ), dec_dilations=(), with_cp=False, conv_cfg=None,
                  norm_cfg={{_base_.norm_cfg}}, act_cfg=dict(type='ReLU'),
                  upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(in_channels=32, in_index=0, channels=32, num_convs=1, kernel_size=1))
work_dir = 'work_dirs/segmenters/fcn_synthscenes-source-local'
