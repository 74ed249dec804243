# BSA (Noguchi & Harada 2019) on StyleGAN2, 10 target shots: the source generator frozen; trained
# are a per-channel scale/shift after every demodulated convolution (the analogue of the
# normalisation's affine, scale_shift=True) and one latent per training image (Adam lr 0.03);
# L1 reconstruction (+ VGG perceptual when checkpoints/vgg19-dcbb9e9d.pth is there), the
# regularisers of the paper; no adversarial term (so no discriminator, R1 or path length).
_base_ = ['../_base_/schedules/adapt_stylegan2_synthscenes.py']
model = dict(generator=dict(scale_shift=True),
             transfer=dict(type='BSA', source_checkpoint={{_base_.source_checkpoint}},
                           num_latents={{_base_.num_shots}}, adapter_lr=0.03, l1_weight=1.0,
                           perceptual=dict(type='VGGPerceptualLoss',
                                           weights_path='checkpoints/vgg19-dcbb9e9d.pth',
                                           weight=0.001, layer_weights=(1.0, 1.0, 1.0, 1.0, 1.0)),
                           affine_reg_weight=0.02, latent_reg_weight=0.1, latent_jitter=0.01,
                           adversarial=False))
optim_wrapper = dict(generator=dict(optimizer=dict(betas=(0.9, 0.999))))
