# mmseg segmenter (UNet + FCNHead, EncoderDecoder) on the SynthScenes SOURCE domain: 20 classes
# (on-disk ids 0..19, 255 = ignore), 2,000 train / 200 val images at 64x64. It is the source
# segmenter of the segmenter-based affinity estimator (configs/affinity/segmenter_synthscenes.py).
# Train (CPU, a few minutes):
#   python tools/train_segmenter.py configs/segmenters/fcn_synthscenes-source.py
# -> work_dirs/segmenters/fcn_synthscenes-source/iter_2000.pth
_base_ = ['./_base_/fcn_unet_synthscenes.py']
domain = 'source'
# data/synthscenes/classes.json ["source"]["classes"] / ["palette"], in on-disk id order.
classes = ('sky', 'cloud', 'sun', 'mountain', 'grass', 'water', 'sand', 'road', 'snow', 'dirt',
           'gravel', 'tree', 'rock', 'brick', 'building', 'car', 'fence', 'flower', 'wood',
           'metal')
palette = [[135, 206, 235], [255, 255, 255], [255, 215, 0], [128, 0, 128], [0, 200, 0],
           [0, 0, 255], [244, 200, 140], [64, 64, 64], [200, 255, 255], [130, 80, 30],
           [160, 160, 160], [0, 90, 0], [255, 128, 0], [200, 0, 0], [255, 0, 255],
           [0, 255, 255], [128, 128, 0], [255, 150, 200], [90, 40, 0], [0, 0, 120]]
metainfo = dict(classes=classes, palette=palette)
# sqrt(median / frequency) of each class's pixels over all source train label maps
class_weight = [0.26, 1.06, 2.1, 0.83, 0.63, 0.66, 0.61, 0.61, 0.62, 0.62, 0.61, 1.43, 1.43, 1.23,
                0.95, 1.4, 1.07, 1.56, 1.51, 1.42]
model = dict(decode_head=dict(num_classes=20, loss_decode=dict(class_weight=class_weight)))
train_dataloader = dict(dataset=dict(
    metainfo=metainfo,
    data_prefix=dict(img_path='source/images/train', seg_map_path='source/annotations/train')))
val_dataloader = dict(dataset=dict(
    metainfo=metainfo,
    data_prefix=dict(img_path='source/images/val', seg_map_path='source/annotations/val')))
test_dataloader = val_dataloader
work_dir = 'work_dirs/segmenters/fcn_synthscenes-source'
