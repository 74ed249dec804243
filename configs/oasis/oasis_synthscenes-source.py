# A small OASIS that learns the SynthScenes source domain (64x64) on 2 CPU cores: the source
# model of the SynthScenes transfer experiments. Width 16 (official: 64), 4 generator blocks
# starting at 8x8, batch 8, 3,000 iterations.
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/synthscenes_source.py',
          '../_base_/default_runtime.py']
num_classes = 21
model = dict(
    data_preprocessor=dict(num_classes=num_classes),
    generator=dict(num_classes=num_classes, crop_size=64, base_channels=16,
                   channel_multipliers=(16, 8, 4, 2, 1)),
    discriminator=dict(num_classes=num_classes, base_channels=16),
    ema_momentum=1e-3,  # decay 0.999: a short run needs a shorter EMA horizon
)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(checkpoint=dict(interval=1000), logger=dict(interval=100))
custom_hooks = [dict(type='SampleGridHook', interval=500, num_samples=8),
                dict(type='SaveSubsetIdsHook')]
randomness = dict(seed=0)
