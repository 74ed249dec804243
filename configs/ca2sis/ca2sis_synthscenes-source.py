# CA2-SIS trained on the SynthScenes source domain (2,000 labelled images, 64 px, 21 channels),
# scaled down to train on 2 CPU cores: mask embedding 32 px -> 4x4 per class -> 128 channels
# (exclude_bg off: SynthScenes' channel 0 is a real class); decoder 4 -> 64 px with 128, 64, 32,
# 32, 32 channels (4 heads x 32; self-attention at 4, 8 and 16 px); style tokens 5 x 64; the
# official losses without VGG (no VGG19 weights offline); batch 8.
#   python tools/train.py configs/ca2sis/ca2sis_synthscenes-source.py
_base_ = ['../_base_/models/ca2sis.py', '../_base_/datasets/synthscenes_source.py',
          '../_base_/default_runtime.py']
model = dict(
    generator=dict(exclude_bg=False, embed_input=32, embed_grid=4, embed_channels=128,
                   stages=((128, 4, 32, True), (64, 4, 32, True), (32, 4, 32, True),
                           (32, 4, 32, False), (32, 2, 32, False)),
                   style_encoder=dict(num_down=6, num_up=5, num_features=2, style_dim=64),
                   mapping=dict(z_dim=16, hidden=128)),
)
iters = 10000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=2000)
val_cfg = dict(type='GenValLoop')
test_cfg = dict(type='GenTestLoop')
default_hooks = dict(checkpoint=dict(interval=2000), ema_norm_stats=dict(num_batches=0))
randomness = dict(seed=0)
