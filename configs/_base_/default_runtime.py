default_scope = 'catgen'
# MMEngine's Runner; the console shows a config summary, progress and metrics, the log file
# everything (catgen/engine/runner.py)
runner_type = 'CatgenRunner'

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # MMEngine's CheckpointHook, but checkpoints and last_checkpoint are written atomically
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3,
                    save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # RNG states in checkpoints: --resume continues exactly as an uninterrupted run
    rng_state=dict(type='RNGStateHook'),
    # the EMA generator's batch-norm statistics recomputed (50 train-mode batches, as the
    # official OASIS) before every checkpoint, validation and sample grid; 0 turns it off
    ema_norm_stats=dict(type='EMANormStatsHook', num_batches=50),
)
custom_hooks = [
    dict(type='SampleGridHook', interval=1000, num_samples=8),
    dict(type='SaveSubsetIdsHook'),
]

# G and D are wrapped separately under DDP (each has its own optimizer); works on CPU (gloo) too.
model_wrapper_cfg = dict(type='SeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
