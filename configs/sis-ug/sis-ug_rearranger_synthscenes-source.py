# SIS-UG stage 1 on SynthScenes: proxy masks and the rearranger of the model zoo's SynthScenes
# StyleGAN2 (zoo://stylegan2_synthscenes-source, 64 px, trained on the 2,000 source images
# WITHOUT labels). No label is read: the training loader only sets the batch size (8; the
# 5-image subset keeps it cheap). Proxy masks: k-means (k = 24) of the prior's normalised
# 16x16 features (convs.3, 64 channels) of 512 random samples; the rearranger works at that
# level (256 positions). 3,000 iterations of Adam lr 1e-4 (docs/sis_ug.md has the measured
# time and quality).
#   python tools/train.py configs/sis-ug/sis-ug_rearranger_synthscenes-source.py
_base_ = ['../_base_/models/sis_ug.py', '../_base_/datasets/synthscenes_source.py',
          '../_base_/default_runtime.py']
model = dict(
    prior=dict(size=64, style_dim=128, n_mlp=4, channel_multiplier=1, max_channels=128,
               channel_base=1024, fused_modconv=False),
    prior_checkpoint='zoo://stylegan2_synthscenes-source',
    proxy_resolution=16,
    num_clusters=24,
    kmeans=dict(num_samples=512),
    rearranger=dict(embed_channels=64),
    train_part='rearranger',
)
train_pipeline = [dict(type='LoadSISAnnotations'), dict(type='PackSISInputs')]
train_dataloader = dict(batch_size=8, dataset=dict(num_shots=5, pipeline=train_pipeline))
optim_wrapper = dict(constructor='GANOptimWrapperConstructor',
                     rearranger=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999))))
iters = 3000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters + 1)
# nothing to evaluate before the mapper exists (stage 2 has the label-to-image evaluation, on
# these source val label maps)
eval_dataloader = _base_.val_dataloader
val_cfg = val_dataloader = val_evaluator = None
test_cfg = test_dataloader = test_evaluator = None
default_hooks = dict(checkpoint=dict(interval=iters, max_keep_ckpts=1), logger=dict(interval=50),
                     ema_norm_stats=dict(num_batches=0))
custom_hooks = [dict(type='ProxyMaskHook', interval=1000)]
randomness = dict(seed=0)
