# OASIS at official widths (Sushko et al. 2021). num_classes counts the don't-care channel.
model = dict(
    type='OASISSynthesizer',
    # the class count is the data set's (tools fill data_preprocessor.num_classes from the
    # training set's classes; generator and discriminator take it from the preprocessor)
    data_preprocessor=dict(type='SISDataPreprocessor'),
    generator=dict(type='OASISGenerator', z_dim=64, base_channels=64, crop_size=256),
    discriminator=dict(type='OASISDiscriminator', base_channels=64),
    loss=dict(type='OASISLoss'),
    labelmix_weight=10.0,
    ema_momentum=1e-4,  # EMA decay 0.9999 (MMEngine's momentum is 1 - decay)
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.999))),
    discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.999))),
)
