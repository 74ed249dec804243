# BSA (Noguchi & Harada 2019) on SynthScenes, as published (docs/transfer.md, "BSA"): the source
# OASIS generator frozen; trained are the per-channel scale/shift after every SPADE
# parameter-free norm and one 16-d latent per training image (Adam lr 0.03, `adapter_lr`), and
# the re-initialised label-reading layers (the target classes differ) at the optimizer's lr 1e-4
# (as every other strategy's G). Losses: L1 + VGG perceptual (0.001 per VGG layer, summed) +
# regularisers (scale/shift -> identity 0.02, summed over layers; latents -> N(0, I) 0.1); the
# latents get N(0, 0.01^2) jitter at every training step; no adversarial term.
# The perceptual loss needs torchvision's vgg19-dcbb9e9d.pth in checkpoints/ (this machine cannot
# download it): without the file BSA warns once and trains with L1 only.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(generator=dict(norm_affine=True),  # BSA's sites: scale 1 / shift 0 after each norm
             transfer=dict(type='BSA', source_checkpoint=source_checkpoint,
                           num_latents={{_base_.num_shots}}, adapter_lr=0.03, l1_weight=1.0,
                           perceptual=dict(type='VGGPerceptualLoss',
                                           weights_path='checkpoints/vgg19-dcbb9e9d.pth',
                                           weight=0.001, layer_weights=(1.0, 1.0, 1.0, 1.0, 1.0)),
                           affine_reg_weight=0.02, latent_reg_weight=0.1, latent_jitter=0.01,
                           adversarial=False))
# Adam with the official betas; lr 1e-4 (the schedule's) applies to the re-initialised layers,
# the scales/shifts and latents get `adapter_lr` through their own parameter group.
optim_wrapper = dict(generator=dict(optimizer=dict(betas=(0.9, 0.999))))
