# The shared base of every few-shot transfer run on SynthScenes, so that all strategies (Scratch,
# FinetuneAll, FreezeD, BSA, EWC, CDC, DCL, CAT) get the same budget on the same data:
# - the source model's architecture (configs/oasis/oasis_synthscenes-source.py: generator width
#   16, 4 SPADE blocks from 8x8, 16-d noise, SPADE hidden 32; U-Net discriminator width 8;
#   PyTorch's default initialisation, init_gain=None, for Scratch and the re-initialised layers),
#   built here for the TARGET classes: the class count is nowhere written, the tools take it
#   from the training set's classes (11 + don't care = 12 channels) for the data preprocessor,
#   G, D and the evaluator (CAT configs wrap the source generator, 21 channels, in an
#   AffinityInputGenerator that reads the target channels); switching the data set
#   (docs/datasets.md, "My own data") changes it everywhere;
# - the target data: `num_shots` = 100 training images (target/few_shot/shots_100.txt), validated
#   on the 500 target val images at the end;
# - the schedule: 2,000 iterations of batch 8, where finetune-all's metric curves have flattened
#   (docs/benchmarks.md, "How long is long enough?"; ~17 min on 2 idle CPU cores at 0.5 s/iter;
#   the demo uses 200), Adam (0, 0.999) lr G 1e-4 / D 4e-4 as the source, EMA decay 0.99.
# Other shot counts: the *_25/_50/_200/_400 configs beside each *_100 config (docs/transfer.md).
_base_ = ['../models/oasis.py', '../datasets/synthscenes_target.py', '../default_runtime.py']
# Every strategy's generator draws i.i.d. per-pixel noise on top of the 3D noise
# (pixel_noise_std=1.0, catgen's option, off in the source model): the target's fine random
# textures (speckled sky, mixed meadow/shore pixels) need per-pixel randomness, and without it
# every finetuned generator draws them as stripes and grid lines anchored to the image borders
# (docs/transfer.md, "Stripes after finetuning": CAT 15.7 -> 4.3 dB over real).
model = dict(
    generator=dict(crop_size=64, base_channels=16, z_dim=16, channel_multipliers=(8, 4, 2, 1, 1),
                   spade_hidden=32, init_gain=None, pixel_noise_std=1.0),
    discriminator=dict(base_channels=8, channel_multipliers=(1, 2, 2, 4, 4, 8), init_gain=None),
    ema_momentum=1e-2,
)
transfer_iters = 2000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=transfer_iters, val_interval=transfer_iters)
val_cfg = dict(type='GenValLoop')  # metrics' prepare() first: cached real FID/KID features
test_cfg = dict(type='GenTestLoop')
# tools/test.py on a run: on the 500 target val label maps, mIoU of the generated images by the
# target segmenter of the model zoo (real val images: 98.8), FID in that segmenter's feature space
# (not the standard FID: no Inception weights offline), the per-class colour distance and the
# periodic-artefact measure (spectrum/axis_excess_db: stripes and grid lines, in dB over real).
# Training validates with the colour distance only (val_evaluator, cheap).
target_segmenter = dict(config='configs/segmenters/fcn_synthscenes-target.py',
                        checkpoint='zoo://fcn_synthscenes-target')
test_evaluator = [
    dict(type='SegmentationMIoU', **target_segmenter, label_offset=1, per_class=False),
    dict(type='FID', feature_extractor=dict(type='SegmenterFeatureExtractor',
                                            **target_segmenter)),
    dict(type='ClassColorDistance'),
    dict(type='SpectralArtifacts'),  # stripes and grid lines (docs/metrics.md)
]
default_hooks = dict(checkpoint=dict(interval=transfer_iters, max_keep_ckpts=1),
                     logger=dict(interval=20))
custom_hooks = [dict(type='SampleGridHook', interval=500, num_samples=8, num_noises=2),
                dict(type='SaveSubsetIdsHook')]
randomness = dict(seed=0)
