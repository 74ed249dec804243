# CA2-SIS (Fontanini et al., TFonta/CA2SIS) at its official settings (256 px): the generator of
# ../shared/docs/methods.md (mask embedding 128 px -> 16x16 per class -> 512 channels; class
# style tokens of 5 x 256 from the grouped-conv style encoder; decoder 16 -> 256 px of GN
# residual blocks and spatial transformers; the optional mapping network z 16 -> tokens), the
# 2-scale 3-layer PatchGAN (ndf 64, spectral + instance norm, every middle conv stride 2),
# hinge + feature matching 10 + VGG19 10 + attention 1, Adam (0, 0.9) G 1e-4 / D 4e-4, no EMA.
# Parameters: G 77,229,243 at 19 classes (CelebAMask-HQ), 393,519,195 at 151 (ADE20K); D
# 1,364,098 / 1,634,434 (tests/models/test_ca2sis.py).
model = dict(
    type='CA2SISSynthesizer',
    data_preprocessor=dict(type='SISDataPreprocessor'),  # num_classes: the data set's
    generator=dict(type='CA2SISGenerator', exclude_bg=True, embed_input=128, embed_grid=16,
                   embed_channels=512, mapping=dict(z_dim=16)),
    discriminator=dict(type='MultiScalePatchGANDiscriminator', num_scales=2, num_layers=3,
                       base_channels=64, last_stride=2),
    gan_loss=dict(type='GANLoss', mode='hinge'),
    feature_matching_loss=dict(type='FeatureMatchingLoss', weight=10.0),
    # the official VGG19 loss needs local weights (torchvision's vgg19-dcbb9e9d.pth):
    # vgg_loss=dict(type='VGGPerceptualLoss', weights_path='checkpoints/vgg19-dcbb9e9d.pth',
    #               weight=10.0),
    vgg_loss=None,
    attention_weight=1.0,
    eval_style='image',
)
optim_wrapper = dict(
    constructor='GANOptimWrapperConstructor',
    generator=dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.0, 0.9))),
    discriminator=dict(optimizer=dict(type='Adam', lr=4e-4, betas=(0.0, 0.9))),
)
