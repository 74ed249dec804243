# SynthScenes target domain (11 classes + don't care), 64x64. `num_shots` picks the fixed nested
# few-shot list target/few_shot/shots_{k}.txt (1, 5, 25, 50, 100, 200, 400); -1 = all 1,000.
dataset_type = 'SynthScenesDataset'
data_root = 'data/synthscenes'
num_shots = 100
train_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSISInputs'),
]
test_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='PackSISInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,  # 64x64 PNGs: no worker needed
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, domain='target', split='train',
                 num_shots=num_shots, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, domain='target', split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClassColorDistance')  # num_classes: the data set's
test_evaluator = val_evaluator
