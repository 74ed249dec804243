# OASIS at official widths (Sushko et al. 2021). num_classes counts the don't-care channel.
num_classes = 151
crop_size = 256
model = dict(
    type='OASISSynthesizer',
    data_preprocessor=dict(type='SISDataPreprocessor', num_classes=num_classes),
    generator=dict(type='OASISGenerator', num_classes=num_classes, z_dim=64, base_channels=64,
                   crop_size=crop_size),
    discriminator=dict(type='OASISDiscriminator', num_classes=num_classes, base_channels=64),
    loss=dict(type='OASISLoss'),
    labelmix_weight=10.0,
    ema_momentum=1e-4,  # EMA decay 0.9999 (MMEngine's momentum is 1 - decay)
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
    discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999))),
)
