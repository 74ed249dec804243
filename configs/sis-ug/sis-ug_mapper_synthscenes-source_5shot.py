# SIS-UG stage 2 on SynthScenes: the semantic mapper from 5 labelled source images (the nested
# subset of seed 0, the same as Fewshot-SMIS's), on the rearranger and proxy masks of stage 1
# (train configs/sis-ug/sis-ug_rearranger_synthscenes-source.py first; its checkpoint is read
# from rearranger_checkpoint, and the rearranger stays frozen). The 5 images are inverted into
# the prior (1,000 Ranger steps, MSE only, as Fewshot-SMIS's SynthScenes configs; cached in the
# work dir); their proxy masks are the mapper's targets. 1,000 iterations of batch 8 (random
# flips), Adam lr 1e-3. Evaluated like Fewshot-SMIS on the 200 source val label maps: mIoU by
# the source segmenter, FID in its features, diversity over 4 random sources per map.
#   python tools/train.py configs/sis-ug/sis-ug_mapper_synthscenes-source_5shot.py
#   python tools/test.py configs/sis-ug/sis-ug_mapper_synthscenes-source_5shot.py \
#       work_dirs/sis-ug_mapper_synthscenes-source_5shot/iter_1000.pth
_base_ = ['./sis-ug_rearranger_synthscenes-source.py',
          '../_base_/evaluation/synthscenes_source_sis.py']
num_shots = 5
model = dict(
    train_part='mapper',
    rearranger_checkpoint='work_dirs/sis-ug_rearranger_synthscenes-source/iter_3000.pth',
    mapper_input='seg',
    inversion=dict(steps=1000, perceptual=None),
    num_eval_samples=4,
)
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
                  dict(type='PackSISInputs')]
train_dataloader = dict(batch_size=8, dataset=dict(num_shots=num_shots, pipeline=train_pipeline))
optim_wrapper = dict(_delete_=True, constructor='GANOptimWrapperConstructor',
                     mapper=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999))))
iters = 1000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
val_cfg = dict(_delete_=True, type='GenValLoop')
val_dataloader = dict(_delete_=True, **_base_.eval_dataloader)
val_evaluator = dict(_delete_=True, type='ClassColorDistance')
test_cfg = dict(_delete_=True, type='GenTestLoop')
test_dataloader = dict(_delete_=True, **_base_.eval_dataloader)
test_evaluator = _base_.source_sis_evaluator  # a list: replaces the base's None
default_hooks = dict(checkpoint=dict(interval=iters, max_keep_ckpts=1))
custom_hooks = [dict(type='PriorInversionHook'),
                dict(type='SampleGridHook', interval=iters, num_samples=8, num_noises=2),
                dict(type='SaveSubsetIdsHook')]
