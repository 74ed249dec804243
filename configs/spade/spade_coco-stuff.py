# SPADE on coco-stuff, official settings: batch 32 on 8 GPUs (Cityscapes 16), Adam (0, 0.9) with TTUR
# lr G 1e-4 / D 4e-4, hinge loss, feature matching 10, VGG 10 (needs local VGG19 weights: set
# model.vgg_loss), 2-scale PatchGAN, 200 epochs (COCO-Stuff 100) with linear decay in the second half.
_base_ = ['../_base_/models/spade.py', '../_base_/datasets/coco_stuff.py',
          '../_base_/default_runtime.py']
# official: instance edges on (no_instance off): 183 + 1 label channels. COCO-Stuff has no
# instance maps of its own: make them as docs/datasets.md says, into instances/<split>/
model = dict(data_preprocessor=dict(instance_edges=True), generator=dict(crop_size=256))
# the data set's pipelines, with the instance maps loaded too
train_pipeline = [dict(t, with_instance=True) if t['type'] == 'LoadSISAnnotations' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, with_instance=True) if t['type'] == 'LoadSISAnnotations' else t
                 for t in _base_.test_pipeline]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# per GPU, x8 GPUs
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=369_647, val_interval=10_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
sync_bn = 'torch'
# constant lr for the first half, then linear decay to 0 (official niter = niter_decay)
lr_decay = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False,
               begin=184_823, end=369_647)]
param_scheduler = dict(generator=lr_decay, discriminator=lr_decay)
