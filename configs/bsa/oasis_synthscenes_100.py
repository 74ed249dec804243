# BSA (Noguchi & Harada 2019) on SynthScenes: the source OASIS generator frozen; trained are the
# per-channel scale/shift after every SPADE parameter-free norm, one 16-d latent per training
# image, and the re-initialised label-reading layers (fc, SPADE mlp_shared.0; the target classes
# differ). Losses: L1 + regularisers (scale/shift -> identity 0.02, latents -> N(0, I) 0.1); no
# adversarial term. Perceptual loss off: to turn it on, put torchvision's vgg19-dcbb9e9d.pth in
# checkpoints/ and set model.transfer.perceptual=dict(type='VGGPerceptualLoss',
# weights_path='checkpoints/vgg19-dcbb9e9d.pth', weight=1.0). Adam lr 0.03 for G's parameters.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(generator=dict(norm_affine=True),  # BSA's sites: scale 1 / shift 0 after each norm
             transfer=dict(type='BSA', source_checkpoint=source_checkpoint,
                           num_latents={{_base_.num_shots}}, l1_weight=1.0, perceptual=None,
                           affine_reg_weight=0.02, latent_reg_weight=0.1, adversarial=False))
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.03, betas=(0.9, 0.999))))
