# StyleGAN2 config-F at 256 px on an image folder, with the official rosinality training
# settings (configs/_base_/models/stylegan2.py): batch 16 (8 GPUs x 2 in the paper, 4 x 4 here
# with tools/dist_train.sh), 800k iterations. Put the images under data/images/train (and a
# held-out set under data/images/val for FID), e.g. FFHQ or LSUN resized to 256.
_base_ = ['../_base_/models/stylegan2.py', '../_base_/default_runtime.py']
data_root = 'data/images'
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='RandomFlip', prob=0.5),
                  dict(type='PackSISInputs')]
test_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='PackSISInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, img_path='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, img_path='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(type='IterBasedTrainLoop', max_iters=800000, val_interval=10000)
val_cfg = dict(type='GenValLoop')
test_cfg = dict(type='GenTestLoop')
val_evaluator = dict(type='FID')  # pytorch-fid's Inception (its weights file, see docs/metrics.md)
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(interval=10000), ema_norm_stats=dict(num_batches=0))
custom_hooks = [dict(type='SampleGridHook', interval=5000, num_samples=16),
                dict(type='SaveSubsetIdsHook')]
