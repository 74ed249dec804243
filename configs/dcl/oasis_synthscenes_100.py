# DCL (Zhao et al. 2022) on SynthScenes: finetune-all plus InfoNCE (temperature 0.07) on the
# generator side (weight 2: adapted vs source features of the same input, negatives the source
# features of the other inputs; every block, pooled 4x4) and the discriminator side (weight 0.5:
# D(adapted image) vs D(source image), negatives D(real target images); U-Net bottleneck).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='DCL', source_checkpoint=source_checkpoint, g_weight=2.0,
                           d_weight=0.5, temperature=0.07))
