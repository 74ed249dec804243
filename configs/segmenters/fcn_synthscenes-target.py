# mmseg segmenter (UNet + FCNHead, EncoderDecoder) on the full SynthScenes TARGET domain:
# 11 classes (on-disk ids 0..10, 255 = ignore), all 1,000 train images, 500 val at 64x64.
# It is the mIoU evaluator of target-domain generated images (the evaluation issue).
# Train (CPU, a few minutes):
#   python tools/train_segmenter.py configs/segmenters/fcn_synthscenes-target.py
# -> work_dirs/segmenters/fcn_synthscenes-target/iter_2000.pth
_base_ = ['./_base_/fcn_unet_synthscenes.py']
domain = 'target'
# data/synthscenes/classes.json ["target"]["classes"] / ["palette"], in on-disk id order.
classes = ('overcast', 'lawn', 'ocean', 'pavement', 'meadow', 'shore', 'lava', 'ice', 'wall',
           'boulder', 'forest')
palette = [[200, 210, 225], [0, 200, 0], [0, 0, 255], [64, 64, 64], [200, 255, 0],
           [244, 200, 140], [255, 60, 0], [150, 255, 255], [200, 0, 0], [160, 160, 160],
           [0, 90, 0]]
metainfo = dict(classes=classes, palette=palette)
# sqrt(median / frequency) of each class's pixels over all target train label maps
class_weight = [0.43, 1.0, 0.78, 1.05, 0.87, 1.1, 0.9, 0.92, 1.2, 1.64, 1.18]
model = dict(decode_head=dict(num_classes=11, loss_decode=dict(class_weight=class_weight)))
train_dataloader = dict(dataset=dict(
    metainfo=metainfo,
    data_prefix=dict(img_path='target/images/train', seg_map_path='target/annotations/train')))
val_dataloader = dict(dataset=dict(
    metainfo=metainfo,
    data_prefix=dict(img_path='target/images/val', seg_map_path='target/annotations/val')))
test_dataloader = val_dataloader
work_dir = 'work_dirs/segmenters/fcn_synthscenes-target'
