# CDC (Ojha et al. 2021) on SynthScenes, as published: finetune-all plus 1000 * KL(source ||
# adapted) of the softmax-normalised pairwise cosine similarities of one generator block's
# features, the block drawn per step from levels 1 .. n-2 (neither the first nor the last); the
# same label maps and noise for the source and the adapted generator. Batch 4 (the paper's).
# Anchor scheme: 10 fixed anchor noises; every 4th iteration noise near an anchor (std 0.1) with
# the ordinary (image-level) OASIS loss; otherwise ordinary noise and, added to the OASIS loss, a
# patch-level discriminator (a 3x3 conv head on the U-Net level nearest 1/8 of the image).
# The source generator compared with is the REAL source model (20 classes, 21 channels): it reads
# the 12-channel target maps through the class affinity A (y_s = A^T y_t), estimated from the
# class names' text embeddings exactly as CAT's configs do (configs/cat/oasis_synthscenes_100.py;
# the target classes are the training set's, filled in by the tools). Budget: batch 4 for twice
# the shared base's iterations, i.e. the same training images as its batch 8 (4,000 x 4).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
data_root = 'data/synthscenes'
cdc_batch_size = 4
transfer_iters = 2 * _base_.transfer_iters  # x 4 = the shared base's iterations x 8 images
train_dataloader = dict(batch_size=cdc_batch_size)
train_cfg = dict(max_iters=transfer_iters, val_interval=transfer_iters)
default_hooks = dict(checkpoint=dict(interval=transfer_iters))
custom_hooks = [dict(type='SampleGridHook', interval=1000, num_samples=8, num_noises=2),
                dict(type='SaveSubsetIdsHook')]
model = dict(transfer=dict(
    type='CDC', source_checkpoint=source_checkpoint, weight=1000.0, feature_layers='inner',
    affinity=dict(type='TextAffinity', backend='sentence_transformers'),
    source_classes=dict(type='SynthScenesDataset', data_root=data_root, domain='source'),
    num_anchors=10, anchor_interval=4, anchor_std=0.1, patch_loss='add'))
