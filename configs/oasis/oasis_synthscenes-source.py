# A small OASIS that learns the SynthScenes source domain (64x64) on 2 CPU cores: the source
# model of the SynthScenes transfer experiments (docs/benchmarks.md has the measured speed).
# Same architecture family as the official OASIS, scaled down: generator width 16 with 4 SPADE
# blocks from 8x8 (channels 128, 64, 32, 16, 16), SPADE hidden width 32, 16-d noise;
# U-Net discriminator width 8; batch 8; 1,000 iterations.
# init_gain=None keeps PyTorch's default initialisation instead of the official Xavier-normal
# (gain 0.02): with it, the discriminator's class head starts ~50x smaller and barely learns to
# segment within this short budget (measured: N+1 loss 3.06 vs 1.82 after 90 D-only steps).
_base_ = ['../_base_/models/oasis.py', '../_base_/datasets/synthscenes_source.py',
          '../_base_/default_runtime.py']
model = dict(
    generator=dict(crop_size=64, base_channels=16, z_dim=16,
                   channel_multipliers=(8, 4, 2, 1, 1), spade_hidden=32, init_gain=None),
    discriminator=dict(base_channels=8,
                       channel_multipliers=(1, 2, 2, 4, 4, 8), init_gain=None),
    ema_momentum=1e-2,  # EMA decay 0.99: a 1,000-iteration run needs a short EMA horizon
)
train_dataloader = dict(batch_size=8)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10000, val_interval=500)
val_cfg = dict(type='ValLoop')
# tools/test.py: the quality recorded in the model zoo (docs/model_zoo.md), on the 200 source val
# label maps: mIoU of the samples by the source segmenter (real val images: segment_real), FID in
# that segmenter's feature space (not the standard FID: no Inception weights offline) and the
# per-class colour distance.
test_cfg = dict(type='GenTestLoop')
source_segmenter = dict(config='configs/segmenters/fcn_synthscenes-source.py',
                        checkpoint='zoo://fcn_synthscenes-source')
test_evaluator = [
    dict(type='SegmentationMIoU', **source_segmenter, label_offset=1, segment_real=True),
    dict(type='FID', feature_extractor=dict(type='SegmenterFeatureExtractor',
                                            **source_segmenter)),
    dict(type='ClassColorDistance'),
]
default_hooks = dict(checkpoint=dict(interval=1000), logger=dict(interval=50))
custom_hooks = [dict(type='SampleGridHook', interval=250, num_samples=8, num_noises=2),
                dict(type='SaveSubsetIdsHook')]
randomness = dict(seed=0)
