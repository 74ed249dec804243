# SPADE (Park et al. 2019): generator, 2-scale PatchGAN, hinge + feature matching (+ VGG).
model = dict(
    type='SPADESynthesizer',
    # the class count is the data set's (see _base_/models/oasis.py)
    # instance_edges=True appends the instance edge map to the label map (official default
    # where the data set has instance maps: Cityscapes, COCO-Stuff); off here for ADE20K
    data_preprocessor=dict(type='SISDataPreprocessor', instance_edges=False),
    # use_vae=True (the official --use_vae flag, off by default) adds the style encoder
    # (SPADEEncoder inside the generator, z_dim 256) and the KL term below
    generator=dict(type='SPADEGenerator', base_channels=64, crop_size=256, use_vae=False),
    discriminator=dict(type='MultiScalePatchGANDiscriminator', num_scales=2, num_layers=4,
                       base_channels=64),
    gan_loss=dict(type='GANLoss', mode='hinge'),
    feature_matching_loss=dict(type='FeatureMatchingLoss', weight=10.0),
    # The official VGG loss needs local VGG19 weights (torchvision's vgg19-dcbb9e9d.pth):
    # vgg_loss=dict(type='VGGPerceptualLoss', weights_path='checkpoints/vgg19-dcbb9e9d.pth', weight=10.0),
    vgg_loss=None,
    kld_loss=dict(type='KLDLoss', weight=0.05),  # official lambda_kld; only with use_vae
    ema_momentum=None,  # the official SPADE uses no EMA
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.9))),
    discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.9))),
)
