# FreezeD (Mo et al. 2020) on StyleGAN2, 10 target shots: finetune, with the discriminator's two
# highest-resolution levels (the 1x1 stem at 64 px and the 64 -> 32 block) frozen; the three
# lowest-resolution blocks (32 -> 16, 16 -> 8, 8 -> 4) and the head (final conv and linear)
# train: the official StyleGAN setting.
_base_ = ['../_base_/schedules/adapt_stylegan2_synthscenes.py']
model = dict(transfer=dict(type='FreezeD', source_checkpoint={{_base_.source_checkpoint}},
                           num_frozen_blocks=2))
