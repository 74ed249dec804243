# OASIS on ADE20K, official settings: batch 32 (4 GPUs x 8), 200 epochs (~126k iters at 20,210
# images), Adam (0, 0.999), lr G 1e-4 / D 4e-4, LabelMix 10, EMA 0.9999, no VGG loss.
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/ade20k.py',
          '../_base_/default_runtime.py']
model = dict(
    generator=dict(crop_size=256),
    labelmix_weight=10.0, ema_momentum=1e-4)
train_dataloader = dict(batch_size=8)  # per GPU; x4 GPUs = 32
train_cfg = dict(type='IterBasedTrainLoop', max_iters=126_400, val_interval=10_000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
sync_bn = 'torch'  # the official generator uses synchronised batch norm
