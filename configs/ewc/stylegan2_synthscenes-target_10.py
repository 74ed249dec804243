# EWC (Li et al. 2020) on StyleGAN2, 10 target shots: finetune with lambda * sum_i F_i
# (theta_i - theta_source_i)^2, F the diagonal Fisher of the source generator from the frozen
# source discriminator's log-likelihood on 64 source samples (random latents), normalised to
# mean 1 (catgen's option: the paper's lambda depends on how F is averaged; docs/transfer.md).
_base_ = ['../_base_/schedules/adapt_stylegan2_synthscenes.py']
model = dict(transfer=dict(type='EWC', source_checkpoint={{_base_.source_checkpoint}},
                           weight=1.0, num_fisher_samples=64, fisher_batch_size=4,
                           log_likelihood='real', fisher_normalization='mean'))
