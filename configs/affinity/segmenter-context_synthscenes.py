# Segmenter affinity with the CONTEXT mmseg source segmenter (configs/segmenters/
# fcn_synthscenes-source.py: UNet of 4 stages, receptive field about the whole 64x64 image,
# source val mIoU 97.6) on the 100-shot target training images.
#   python tools/estimate_affinity.py configs/affinity/segmenter-context_synthscenes.py \
#       --out work_dirs/affinity/segmenter-context
_base_ = ['./segmenter_synthscenes.py']
affinity_estimator = dict(
    segmenter=dict(config='configs/segmenters/fcn_synthscenes-source.py',
                   checkpoint='zoo://fcn_synthscenes-source'))
