benchmark_curve_interval = 500
custom_hooks = [
    dict(interval=500, num_noises=2, num_samples=8, type='SampleGridHook'),
    dict(type='SaveSubsetIdsHook'),
    dict(type='TransferHook'),
]
data_root = 'data/synthscenes'
dataset_type = 'SynthScenesDataset'
default_hooks = dict(
    checkpoint=dict(
        by_epoch=False,
        interval=500,
        max_keep_ckpts=-1,
        save_last=True,
        type='AtomicCheckpointHook'),
    ema_norm_stats=dict(num_batches=50, type='EMANormStatsHook'),
    logger=dict(interval=20, log_metric_by_epoch=False, type='LoggerHook'),
    param_scheduler=dict(type='ParamSchedulerHook'),
    rng_state=dict(type='RNGStateHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    timer=dict(type='IterTimerHook'))
default_scope = 'catgen'
env_cfg = dict(
    cudnn_benchmark=False,
    dist_cfg=dict(backend='nccl'),
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
launcher = 'none'
load_from = None
log_level = 'INFO'
log_processor = dict(by_epoch=False)
model = dict(
    data_preprocessor=dict(num_classes=12, type='SISDataPreprocessor'),
    discriminator=dict(
        base_channels=8,
        channel_multipliers=(
            1,
            2,
            2,
            4,
            4,
            8,
        ),
        init_gain=None,
        type='OASISDiscriminator'),
    ema_momentum=0.01,
    generator=dict(
        generator=dict(
            base_channels=16,
            channel_multipliers=(
                8,
                4,
                2,
                1,
                1,
            ),
            crop_size=64,
            init_gain=None,
            num_classes=21,
            pixel_noise_std=1.0,
            spade_hidden=32,
            type='OASISGenerator',
            z_dim=16),
        type='AffinityInputGenerator'),
    labelmix_weight=10.0,
    loss=dict(type='OASISLoss'),
    num_eval_samples=1,
    transfer=None,
    type='OASISSynthesizer')
model_wrapper_cfg = dict(
    broadcast_buffers=False,
    find_unused_parameters=False,
    type='catgen.SeparateDistributedDataParallel')
num_shots = 100
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    discriminator=dict(
        optimizer=dict(betas=(
            0.0,
            0.999,
        ), lr=0.0004, type='Adam')),
    generator=dict(
        optimizer=dict(betas=(
            0.0,
            0.999,
        ), lr=0.0001, type='Adam')))
randomness = dict(deterministic=False, seed=0)
resume = False
runner_type = 'CatgenRunner'
source_checkpoint = 'zoo://oasis_synthscenes-source'
source_num_classes = 21
target_segmenter = dict(
    checkpoint='zoo://fcn_synthscenes-target',
    config='configs/segmenters/fcn_synthscenes-target.py')
test_cfg = dict(type='GenTestLoop')
test_dataloader = dict(
    batch_size=16,
    dataset=dict(
        data_root='data/synthscenes',
        domain='target',
        pipeline=[
            dict(type='LoadSISImageFromFile'),
            dict(type='LoadSISAnnotations'),
            dict(type='PackSISInputs'),
        ],
        split='val',
        type='SynthScenesDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=False, type='DefaultSampler'))
test_evaluator = [
    dict(
        feature_extractor=dict(
            checkpoint='zoo://fcn_synthscenes-target',
            config='configs/segmenters/fcn_synthscenes-target.py',
            type='SegmenterFeatureExtractor'),
        type='FID'),
    dict(
        feature_extractor=dict(
            checkpoint='zoo://fcn_synthscenes-target',
            config='configs/segmenters/fcn_synthscenes-target.py',
            type='SegmenterFeatureExtractor'),
        subset_size=100,
        type='KID'),
    dict(
        checkpoint='zoo://fcn_synthscenes-target',
        config='configs/segmenters/fcn_synthscenes-target.py',
        label_offset=1,
        num_classes=12,
        per_class=False,
        type='SegmentationMIoU'),
    dict(num_classes=12, type='AppearanceDistance'),
    dict(num_classes=12, type='ClassColorDistance'),
    dict(type='SpectralArtifacts'),
]
test_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(type='PackSISInputs'),
]
train_cfg = dict(max_iters=2000, type='IterBasedTrainLoop', val_interval=2000)
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        data_root='data/synthscenes',
        domain='target',
        num_shots=100,
        pipeline=[
            dict(type='LoadSISImageFromFile'),
            dict(type='LoadSISAnnotations'),
            dict(prob=0.5, type='RandomFlip'),
            dict(type='PackSISInputs'),
        ],
        split='train',
        type='SynthScenesDataset'),
    num_workers=0,
    persistent_workers=False,
    sampler=dict(shuffle=True, type='InfiniteSampler'))
train_pipeline = [
    dict(type='LoadSISImageFromFile'),
    dict(type='LoadSISAnnotations'),
    dict(prob=0.5, type='RandomFlip'),
    dict(type='PackSISInputs'),
]
transfer_iters = 2000
val_cfg = None
val_dataloader = None
val_evaluator = None
vis_backends = [
    dict(type='LocalVisBackend'),
]
visualizer = dict(
    name='visualizer',
    type='Visualizer',
    vis_backends=[
        dict(type='LocalVisBackend'),
    ])
work_dir = 'work_dirs/benchmarks/synthscenes_transfer/cat_100shots_seed0/curve'
