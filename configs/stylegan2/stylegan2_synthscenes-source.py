# A small StyleGAN2 that learns the SynthScenes source images (64x64, 2,000 images) on 2 CPU
# cores: the source model of the unconditional few-shot adaptation experiments
# (configs/<strategy>/stylegan2_synthscenes-target_10.py; docs/benchmarks.md, "StyleGAN2 on
# SynthScenes" has the measured time and FID; zoo://stylegan2_synthscenes-source). Same
# architecture and losses as the official 256 px model, scaled down: channels 128 (4, 8 px),
# 64, 32, 16 (64 px); mapping 4 x 128; batch 8; 4,000 iterations (0.6-1 s/iter on one core of
# the shared 2-core machine, fused_modconv=False). Lazy R1 with gamma 1 (the official code's 10
# is for 256 px and up; the StyleGAN2-ADA heuristic gives 0.1 at 64 px, batch 8) and the
# official path-length regulariser.
_base_ = ['../_base_/models/stylegan2.py', '../_base_/datasets/synthscenes_images.py',
          '../_base_/default_runtime.py']
arch = dict(size=64, channel_multiplier=1, max_channels=128, channel_base=1024)
model = dict(
    generator=dict(**arch, style_dim=128, n_mlp=4, fused_modconv=False),
    discriminator=dict(**arch),
    r1_gamma=1.0,
)
max_iters = 4000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='GenValLoop')
test_cfg = dict(type='GenTestLoop')
# FID in the feature space of the source segmenter of the model zoo (no Inception weights
# offline), 200 generated (fixed latents) vs the 200 source val images
source_segmenter = dict(config='configs/segmenters/fcn_synthscenes-source.py',
                        checkpoint='zoo://fcn_synthscenes-source')
val_evaluator = dict(type='FID', feature_extractor=dict(type='SegmenterFeatureExtractor',
                                                        **source_segmenter))
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(interval=1000), logger=dict(interval=50),
                     ema_norm_stats=dict(num_batches=0))
custom_hooks = [dict(type='SampleGridHook', interval=500, num_samples=16),
                dict(type='SaveSubsetIdsHook')]
randomness = dict(seed=0)
