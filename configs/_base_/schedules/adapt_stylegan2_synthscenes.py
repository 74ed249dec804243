# The shared base of every few-shot adaptation run of the SynthScenes StyleGAN2 (the setting of
# CDC and DCL: an unconditional generator adapted to 10 target images), so that all strategies
# get the same budget on the same data:
# - the source model's architecture (configs/stylegan2/stylegan2_synthscenes-source.py) and its
#   weights (zoo://stylegan2_synthscenes-source: 4,000 iterations on the 2,000 source images);
# - the target: 10 images of the SynthScenes TARGET domain (other textures, classes and layouts
#   than the source: a change of content, not of colour alone), the nested subset of seed 0
#   written to the work dir; held out: the 500 target val images. Other targets (the night and
#   sketch renderings of source scenes, docs/synthscenes.md) are a data override away
#   (configs/benchmarks/stylegan2_fewshot_synthscenes-night.py);
# - the schedule: batch 4 (CDC's official), 1,000 iterations, the official Adam and lazy
#   regularisers of the source training; EMA decay 0.5 ** (32 / 10000) as the official code;
# - DCL's analysis every 100 iterations (AdaptationCurveHook): quality = mean target probability
#   of a realism classifier (trained once on the 200 held-out source val vs 500 target val
#   images) over 1,000 images from fixed latents; diversity = intra-cluster distance of the same
#   images around the 10 shots, in the LPIPS form over the features of the target segmenter of
#   the model zoo (no ImageNet VGG weights offline: NOT LPIPS values; docs/stylegan2.md).
# 4-17 min per run on one CPU core of the shared machine, evaluations included (docs/benchmarks.md).
_base_ = ['../models/stylegan2.py', '../default_runtime.py']
source_checkpoint = 'zoo://stylegan2_synthscenes-source'
data_root = 'data/synthscenes'
arch = dict(size=64, channel_multiplier=1, max_channels=128, channel_base=1024)
model = dict(generator=dict(**arch, style_dim=128, n_mlp=4, fused_modconv=False),
             discriminator=dict(**arch), r1_gamma=1.0)
num_shots = 10
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='RandomFlip', prob=0.5),
                  dict(type='PackSISInputs')]
test_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='PackSISInputs')]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, img_path='target/images/train',
                 num_shots=num_shots, pipeline=train_pipeline))
# tools/test.py: FID in the target segmenter's features, 500 generated (fixed latents) vs the
# 500 held-out target images
test_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, img_path='target/images/val',
                 pipeline=test_pipeline))
val_dataloader = test_dataloader
segmenter = dict(config='configs/segmenters/fcn_synthscenes-target.py',
                 checkpoint='zoo://fcn_synthscenes-target')
test_evaluator = dict(type='FID', feature_extractor=dict(type='SegmenterFeatureExtractor',
                                                         **segmenter))
val_evaluator = test_evaluator
adapt_iters = 1000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=adapt_iters, val_interval=adapt_iters)
val_cfg = dict(type='GenValLoop')
test_cfg = dict(type='GenTestLoop')
default_hooks = dict(checkpoint=dict(interval=adapt_iters, max_keep_ckpts=1),
                     logger=dict(interval=20), ema_norm_stats=dict(num_batches=0))
custom_hooks = [
    dict(type='SampleGridHook', interval=250, num_samples=10),
    dict(type='SaveSubsetIdsHook'),
    dict(type='AdaptationCurveHook', interval=100, num_samples=1000,
         source_images=dict(type='ImageFolderDataset', data_root=data_root,
                            img_path='source/images/val'),
         target_images=dict(type='ImageFolderDataset', data_root=data_root,
                            img_path='target/images/val'),
         distance=dict(type='segmenter', **segmenter)),
]
randomness = dict(seed=0)
