# SynthScenes source images without label maps (64x64): the source domain of the unconditional
# few-shot setting (StyleGAN2; docs/synthscenes.md, "Unconditional domains").
dataset_type = 'ImageFolderDataset'
data_root = 'data/synthscenes'
train_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSISInputs'),
]
test_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='PackSISInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, img_path='source/images/train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, img_path='source/images/val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
