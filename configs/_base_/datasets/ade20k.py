# ADE20K (ADEChallengeData2016) as OASIS uses it: resize 286, random crop 256, flip.
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
train_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='Resize', scale=(286, 286)),
    dict(type='RandomCrop', crop_size=(256, 256)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSISInputs'),
]
test_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='Resize', scale=(256, 256)),
    dict(type='PackSISInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, split='training',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, split='validation',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClassColorDistance')  # num_classes: the data set's
test_evaluator = val_evaluator
