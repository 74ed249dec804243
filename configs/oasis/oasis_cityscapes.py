# OASIS on Cityscapes, official settings: 256x512, batch 20 (4 GPUs x 5), 200 epochs (~30k
# iters at 2,975 images), lr G 4e-4 / D 4e-4, LabelMix 5, EMA 0.999.
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/cityscapes.py',
          '../_base_/default_runtime.py']
model = dict(
    generator=dict(crop_size=512, aspect_ratio=2.0),
    labelmix_weight=5.0, ema_momentum=1e-3)
optim_wrapper = dict(generator=dict(optimizer=dict(lr=4e-4)))
train_dataloader = dict(batch_size=5)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=30_000, val_interval=5_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
sync_bn = 'torch'
