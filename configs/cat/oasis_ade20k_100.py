# CAT: OASIS trained on COCO-Stuff (182 classes) -> ADE20K (150 classes) with 100 images.
# Put the source checkpoint at checkpoints/oasis_coco-stuff.pth (a catgen checkpoint of
# configs/oasis/oasis_coco-stuff.py, or the official one converted with
# tools/convert_oasis_checkpoint.py) and ADE20K at data/ade/ADEChallengeData2016
# (docs/datasets.md). Both are checked when the model is built, before any long work.
# Affinity: class-name text embeddings (offline all-MiniLM-L6-v2). Schedule: catgen's choice
# (the paper's could not be checked): 20k iterations of batch 8 per GPU, EMA decay 0.999.
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/ade20k.py',
          '../_base_/default_runtime.py']
source_checkpoint = 'checkpoints/oasis_coco-stuff.pth'
data_root = 'data/ade/ADEChallengeData2016'
num_shots = 100
source_num_classes = 183  # source: COCO-Stuff, don't care included
# The architecture the run ends with: the source generator (COCO-Stuff's 183 channels) behind
# the affinity layer that reads ADE20K's 151 channels (the data set's count, filled in by the
# tools); the discriminator is built for ADE20K's classes, its head initialised through A.
model = dict(
    generator=dict(_delete_=True, type='AffinityInputGenerator',
                   generator=dict(_base_.model.generator, num_classes=source_num_classes)),
    labelmix_weight=10.0, ema_momentum=1e-3,
    transfer=dict(
        type='CAT',
        source_checkpoint=source_checkpoint,
        affinity=dict(type='TextAffinity', backend='sentence_transformers'),
        source_classes=dict(type='COCOStuffDataset'),
        learn_affinity=True, init_discriminator_head=True))
train_dataloader = dict(batch_size=8, dataset=dict(data_root=data_root, num_shots=num_shots))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20_000, val_interval=2_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=2_000))
