# EWC (Li et al. 2020) on SynthScenes: finetune-all plus
# weight * sum_i F_i (theta_i - theta_src_i)^2 on the generator weights copied from the source.
# F = diagonal Fisher of the source generator (log-probability "real" of the source OASIS
# discriminator on source-generated images from random blocky source label maps), estimated at
# start-up from 16 batches of 4 and normalised to mean 1 (docs/transfer.md).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='EWC', source_checkpoint=source_checkpoint, weight=1.0,
                           num_fisher_samples=16, fisher_batch_size=4, log_likelihood='real',
                           fisher_normalization='mean'))
