# CAT: OASIS trained on COCO-Stuff (182 classes) -> Cityscapes (34 label ids) with 100 images.
# The COCO-Stuff generator is fully convolutional: built at 256x512 (aspect 2) it loads the
# 256x256 source weights unchanged. Put the source checkpoint at checkpoints/oasis_coco-stuff.pth
# and Cityscapes at data/cityscapes (leftImg8bit/, gtFine/; docs/datasets.md).
# Schedule: catgen's choice: 20k iterations of batch 5 per GPU, EMA decay 0.999, LabelMix 5.
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/cityscapes.py',
          '../_base_/default_runtime.py']
source_checkpoint = 'checkpoints/oasis_coco-stuff.pth'
data_root = 'data/cityscapes'
num_shots = 100
source_num_classes = 183  # source: COCO-Stuff, don't care included
# The architecture the run ends with: the source generator (COCO-Stuff's 183 channels, at
# Cityscapes' 512x256) behind the affinity layer that reads Cityscapes' 35 channels (the data
# set's count, filled in by the tools); the discriminator built for Cityscapes' classes.
model = dict(
    generator=dict(_delete_=True, type='AffinityInputGenerator',
                   generator=dict(_base_.model.generator, num_classes=source_num_classes,
                                  crop_size=512, aspect_ratio=2.0)),
    labelmix_weight=5.0, ema_momentum=1e-3,
    transfer=dict(
        type='CAT',
        source_checkpoint=source_checkpoint,
        affinity=dict(type='TextAffinity', backend='sentence_transformers'),
        source_classes=dict(type='COCOStuffDataset'),
        learn_affinity=True, init_discriminator_head=True))
train_dataloader = dict(batch_size=5, dataset=dict(data_root=data_root, num_shots=num_shots))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20_000, val_interval=2_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=2_000))
