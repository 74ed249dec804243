# SPADE (Park et al. 2019): generator, 2-scale PatchGAN, hinge + feature matching (+ VGG).
model = dict(
    type='SPADESynthesizer',
    # the class count is the data set's (see _base_/models/oasis.py)
    data_preprocessor=dict(type='SISDataPreprocessor'),
    generator=dict(type='SPADEGenerator', base_channels=64, crop_size=256),
    discriminator=dict(type='MultiScalePatchGANDiscriminator', num_scales=2, num_layers=4,
                       base_channels=64),
    gan_loss=dict(type='GANLoss', mode='hinge'),
    feature_matching_loss=dict(type='FeatureMatchingLoss', weight=10.0),
    # The official VGG loss needs local VGG19 weights (torchvision's vgg19-dcbb9e9d.pth):
    # vgg_loss=dict(type='VGGPerceptualLoss', weights_path='checkpoints/vgg19-dcbb9e9d.pth', weight=10.0),
    vgg_loss=None,
    ema_momentum=None,  # the official SPADE uses no EMA
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.9))),
    discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.9))),
)
