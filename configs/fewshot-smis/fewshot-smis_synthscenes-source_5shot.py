# Fewshot-SMIS on SynthScenes, trainable on 2 CPU cores: the prior is the SynthScenes StyleGAN2
# of the model zoo (zoo://stylegan2_synthscenes-source, 64 px, trained on the 2,000 source
# images WITHOUT labels); 5 labelled source images (the nested subset of seed 0); evaluated on
# the 200 source val label maps: mIoU of the samples by the source segmenter (real val images:
# segment_real), FID in its feature space, diversity (LPIPS form in its features, 4 samples per
# map, multimodal) and the per-class colour distance.
# Scaled down from the official settings (configs/_base_/models/fewshot_smis.py): the encoder
# has 1, 1, 2, 1 IR-SE units of 16, 32, 64, 128 channels (the official pyramid and heads);
# pseudo labels from the prior's 32x32 and 64x64 features (32 + 16 channels: the 64x64 level
# alone has 16); inversion 1,000 Ranger steps at lr 1 with MSE only (no AlexNet weights
# offline: LPIPS's backbone cannot be loaded); 3,000 encoder iterations of batch 8 with Ranger
# lr 1e-4 (docs/fewshot_smis.md has the measured time and quality).
_base_ = ['../_base_/models/fewshot_smis.py', '../_base_/datasets/synthscenes_source.py',
          '../_base_/evaluation/synthscenes_source_sis.py', '../_base_/default_runtime.py']
num_shots = 5
model = dict(
    prior=dict(size=64, style_dim=128, n_mlp=4, channel_multiplier=1, max_channels=128,
               channel_base=1024, fused_modconv=False),
    prior_checkpoint='zoo://stylegan2_synthscenes-source',
    encoder=dict(widths=(16, 32, 64, 128), units=(1, 1, 2, 1)),
    feature_layers=('convs.5', 'convs.7'),
    inversion=dict(steps=1000, perceptual=None),
    multimodal=True, multimodal_from=5, num_eval_samples=4,
)
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
                  dict(type='PackSISInputs')]
train_dataloader = dict(batch_size=8, dataset=dict(num_shots=num_shots, pipeline=train_pipeline))
iters = 3000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
val_cfg = dict(type='GenValLoop')
test_cfg = dict(type='GenTestLoop')
test_evaluator = _base_.source_sis_evaluator
val_evaluator = dict(type='ClassColorDistance')
default_hooks = dict(checkpoint=dict(interval=iters, max_keep_ckpts=1), logger=dict(interval=50),
                     ema_norm_stats=dict(num_batches=0))
custom_hooks = [dict(type='PriorInversionHook'),
                dict(type='SampleGridHook', interval=1000, num_samples=8, num_noises=2),
                dict(type='SaveSubsetIdsHook')]
randomness = dict(seed=0)
