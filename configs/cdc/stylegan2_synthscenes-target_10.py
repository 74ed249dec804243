# CDC (Ojha et al. 2021) on StyleGAN2, 10 target shots, as the official code: batch 4; at a
# layer drawn per step from [1, n_latent - 2] of [conv1, every StyledConv] (levels 1 .. 8 of 9 at
# 64 px), 1000 * KL(source || adapted) of the softmax-normalised pairwise cosine similarities;
# 10 fixed anchor latents, every 4th iteration latents near an anchor (std 0.1) with the
# image-level discriminator, otherwise ordinary latents with the patch-level discriminator only
# (a 3x3 conv head on D's level nearest 1/8 of the image: 8x8 here, 32x32 at 256 px) --
# patch_loss='replace', the official alternation.
_base_ = ['../_base_/schedules/adapt_stylegan2_synthscenes.py']
model = dict(transfer=dict(type='CDC', source_checkpoint={{_base_.source_checkpoint}},
                           weight=1000.0, feature_layers=[1, 2, 3, 4, 5, 6, 7, 8],
                           num_anchors=10, anchor_interval=4, anchor_std=0.1,
                           patch_loss='replace'))
