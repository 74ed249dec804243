# OASIS on COCO-Stuff 164k, official settings: batch 32 (4 GPUs x 8), 100 epochs (~370k iters at
# 118,287 images), lr G 1e-4 / D 4e-4, LabelMix 10, EMA 0.9999.
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/coco_stuff.py',
          '../_base_/default_runtime.py']
model = dict(
    generator=dict(crop_size=256),
    labelmix_weight=10.0, ema_momentum=1e-4)
train_dataloader = dict(batch_size=8)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=370_000, val_interval=20_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
sync_bn = 'torch'
