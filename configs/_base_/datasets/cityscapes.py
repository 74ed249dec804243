# Cityscapes (gtFine labelIds, 35 channels) as OASIS uses it: 256x512, flip only.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
train_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='Resize', scale=(512, 256)),  # (W, H)
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSISInputs'),
]
test_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='Resize', scale=(512, 256)),  # (W, H)
    dict(type='PackSISInputs'),
]
train_dataloader = dict(
    batch_size=5, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=5, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClassColorDistance')  # num_classes: the data set's
test_evaluator = val_evaluator
