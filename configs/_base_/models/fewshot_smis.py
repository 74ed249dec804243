# Fewshot-SMIS (Endo & Kanamori, CVPR 2021) as the official code (endo-yuki-t/Fewshot-SMIS)
# runs it at 256 px: a frozen StyleGAN2 prior (config-F, 256 px, 14 styles of 512), pSp's
# GradualStyleEncoder with the IR-SE50 body (3, 4, 14, 3 units of 64, 128, 256, 512 channels;
# 209,535,936 parameters for ADE20K's 151 classes) reading the one-hot label map, W+ = E(x) +
# w_avg; pseudo labels from the prior's 64x64 features (dense: class prototypes; sparse: top-3
# claims above cosine 0.5); latent regression loss MSE(w_hat, w); Ranger lr 1e-4, batch 2.
# Inversion of the labelled images: W+ from w_avg + small noise, Ranger lr 1, 2,000 steps,
# MSE + 0.8 LPIPS (AlexNet; its ImageNet backbone from a local file: docs/fewshot_smis.md).
# Multimodal results: the fine layers (8 onward) from a random sample.
model = dict(
    type='FewshotSMISSynthesizer',
    data_preprocessor=dict(type='SISDataPreprocessor'),  # num_classes: the data set's
    prior=dict(type='StyleGAN2Generator', size=256, style_dim=512, n_mlp=8,
               channel_multiplier=2),
    prior_checkpoint=None,  # set in each config
    encoder=dict(type='PSPEncoder', widths=(64, 128, 256, 512), units=(3, 4, 14, 3)),
    mode='dense',
    feature_resolution=64,
    top_k=3, threshold=0.5,
    inversion=dict(steps=2000, lr=1.0, optimizer=dict(type='Ranger'),
                   perceptual=dict(type='lpips', net='alex'), perceptual_weight=0.8),
    multimodal=False, multimodal_from=8,
)
optim_wrapper = dict(constructor='GANOptimWrapperConstructor',
                     encoder=dict(optimizer=dict(type='Ranger', lr=1e-4)))
