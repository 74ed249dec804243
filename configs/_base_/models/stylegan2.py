# StyleGAN2 config-F at 256 px as rosinality/stylegan2-pytorch trains it (the source models of
# CDC and DCL): mapping 8 x 512 (lr x 0.01), channel multiplier 2 (G 30,034,338 and D
# 28,864,129 parameters), non-saturating logistic loss, lazy R1 (gamma 10, every 16 steps),
# lazy path-length regularisation (weight 2, every 4 steps, half batch), style mixing 0.9,
# EMA decay 0.5 ** (32 / 10000). Adam as the official code: lr 0.002 * c, betas (0, 0.99 ** c)
# with c = k / (k + 1) for the lazy interval k (G: 4 -> 0.8, D: 16 -> 16/17).
model = dict(
    type='StyleGAN2Synthesizer',
    data_preprocessor=dict(type='ImageDataPreprocessor', num_classes=0),
    generator=dict(type='StyleGAN2Generator', size=256, style_dim=512, n_mlp=8,
                   channel_multiplier=2),
    discriminator=dict(type='StyleGAN2Discriminator', size=256, channel_multiplier=2),
    r1_gamma=10.0, r1_interval=16,
    path_length_weight=2.0, path_length_interval=4, path_batch_shrink=2,
    mixing=0.9,
    ema_momentum=1 - 0.5 ** (32 / 10000),  # MMEngine's momentum is 1 - decay
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=0.002 * 4 / 5, betas=(0.0, 0.99 ** (4 / 5)))),
    discriminator=dict(optimizer=dict(type='Adam', lr=0.002 * 16 / 17,
                                      betas=(0.0, 0.99 ** (16 / 17)))),
)
