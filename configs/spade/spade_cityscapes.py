# SPADE on cityscapes, official settings: batch 32 on 8 GPUs (Cityscapes 16), Adam (0, 0.9) with TTUR
# lr G 1e-4 / D 4e-4, hinge loss, feature matching 10, VGG 10 (needs local VGG19 weights: set
# model.vgg_loss), 2-scale PatchGAN, 200 epochs (COCO-Stuff 100) with linear decay in the second half.
_base_ = ['../_base_/models/spade.py', '../_base_/datasets/cityscapes.py',
          '../_base_/default_runtime.py']
model = dict(generator=dict(crop_size=512, aspect_ratio=2.0))
train_dataloader = dict(batch_size=2)  # per GPU, x8 GPUs
train_cfg = dict(type='IterBasedTrainLoop', max_iters=37_188, val_interval=10_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
sync_bn = 'torch'
# constant lr for the first half, then linear decay to 0 (official niter = niter_decay)
lr_decay = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
               begin=18_594, end=37_188)]
param_scheduler = dict(generator=lr_decay, discriminator=lr_decay)
