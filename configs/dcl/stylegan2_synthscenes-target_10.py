# DCL (Zhao et al. 2022) on StyleGAN2, 10 target shots: finetune with the generator-side InfoNCE
# (anchor: adapted feature of latent i, positive: the source generator's for the same latent,
# negatives: the source's for the other latents; weight 2) and the discriminator-side InfoNCE
# (anchor: D feature of the adapted image, positive: of the source image, negatives: of the real
# target images; weight 0.5), temperature 0.07 (the paper's). What the paper leaves open,
# catgen's documented choice: every generator level averaged (pooled 4x4), D's 4x4 level of the
# last residual block (convs.4, before the minibatch standard deviation mixes the batch).
_base_ = ['../_base_/schedules/adapt_stylegan2_synthscenes.py']
model = dict(transfer=dict(type='DCL', source_checkpoint={{_base_.source_checkpoint}},
                           g_weight=2.0, d_weight=0.5, temperature=0.07, g_layers=None,
                           g_pool_size=4, d_layers=['convs.4'], d_pool_size=1))
