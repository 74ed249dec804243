# Fewshot-SMIS on ADE20K with 5 labelled images, as the official code (256 px, batch 2,
# 100,000 iterations of the encoder). The prior: a StyleGAN2 (config-F, 256 px) trained on
# unlabelled ADE20K images, at checkpoints/stylegan2_ade20k-256.pth: a catgen checkpoint of
# configs/stylegan2/stylegan2_256.py trained on those images, or a rosinality checkpoint converted
# with tools/convert_stylegan2_checkpoint.py. LPIPS's AlexNet backbone for the inversion:
# ~/.cache/torch/hub/checkpoints/alexnet-owt-7be5be79.pth (docs/fewshot_smis.md).
_base_ = ['../_base_/models/fewshot_smis.py', '../_base_/datasets/ade20k.py',
          '../_base_/default_runtime.py']
data_root = 'data/ade/ADEChallengeData2016'
num_shots = 5
model = dict(prior_checkpoint='checkpoints/stylegan2_ade20k-256.pth')
# the loader yields the labelled shots (read once by the PriorInversionHook); its batch size is
# the number of pseudo-labelled samples per step
train_pipeline = [dict(type='LoadSISImageFromFile'), dict(type='LoadSISAnnotations'),
                  dict(type='Resize', scale=(256, 256)), dict(type='PackSISInputs')]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, num_shots=num_shots,
                                     pipeline=train_pipeline))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100_000, val_interval=10_000)
val_cfg = dict(type='GenValLoop')
test_cfg = dict(type='GenTestLoop')
custom_hooks = [dict(type='PriorInversionHook'),
                dict(type='SampleGridHook', interval=5000, num_samples=8),
                dict(type='SaveSubsetIdsHook')]
default_hooks = dict(checkpoint=dict(interval=10_000), ema_norm_stats=dict(num_batches=0))
