# EWC (Li et al. 2020) on SynthScenes: finetune-all plus
# weight * sum_i F_i (theta_i - theta_src_i)^2 on the generator weights copied from the source.
# F = diagonal empirical Fisher of the source generator: the mean over 64 source-generated
# images (generator forwards in batches of 4, batch statistics as in training) of the squared
# per-image gradient of the source OASIS discriminator's log-probability "real", estimated at
# start-up and normalised to mean 1. The images are made from the SOURCE training label maps
# (source_data: the training set of configs/oasis/oasis_synthscenes-source.py, seeded random
# order); without source_data EWC falls back to random blocky maps (docs/transfer.md).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
source_data = dict(type='SynthScenesDataset', data_root='data/synthscenes', domain='source',
                   split='train')
model = dict(transfer=dict(type='EWC', source_checkpoint=source_checkpoint, weight=1.0,
                           num_fisher_samples=64, fisher_batch_size=4, log_likelihood='real',
                           fisher_normalization='mean', source_data=source_data))
