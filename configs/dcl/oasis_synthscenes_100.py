# DCL (Zhao et al. 2022) on SynthScenes: finetune-all plus InfoNCE (temperature 0.07) on the
# generator side (weight 2: adapted vs source features of the same input, negatives the source
# features of the other inputs; every block, pooled 4x4) and the discriminator side (weight 0.5:
# D(adapted image) vs D(source image), negatives D(real target images); U-Net bottleneck).
# The source generator is the REAL source model (20 classes, 21 channels): it reads the
# 12-channel target maps through the class affinity A (y_s = A^T y_t), estimated from the class
# names' text embeddings exactly as CAT's configs do (configs/cat/oasis_synthscenes_100.py; the
# target classes are the training set's, filled in by the tools).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
data_root = 'data/synthscenes'
model = dict(transfer=dict(
    type='DCL', source_checkpoint=source_checkpoint, g_weight=2.0, d_weight=0.5,
    temperature=0.07,
    affinity=dict(type='TextAffinity', backend='sentence_transformers'),
    source_classes=dict(type='SynthScenesDataset', data_root=data_root, domain='source')))
