# SIS-UG, semantic image synthesis with an unconditional generator (Chae et al., NeurIPS 2023),
# at 256 px: a frozen StyleGAN2 prior (config-F, 256 px); proxy masks = k-means of its
# normalised 32x32 features (the last StyledConv at 32 px, 512 channels) of 1,024 random
# samples; a cross-attention FeatureRearranger at that level; a SemanticMapper from the user
# mask to the proxy mask. No public code exists: the paper gives the method, not the sizes,
# losses or schedules; every number below is catgen's documented default (docs/sis_ug.md),
# not the paper's. Stage 1 (train_part='rearranger') needs no labels; stage 2
# (train_part='mapper') inverts the few labelled images into the prior.
model = dict(
    type='SISUGSynthesizer',
    data_preprocessor=dict(type='SISDataPreprocessor'),  # num_classes: the data set's
    prior=dict(type='StyleGAN2Generator', size=256, style_dim=512, n_mlp=8,
               channel_multiplier=2),
    prior_checkpoint=None,  # set in each config
    proxy_resolution=32,
    num_clusters=24,
    kmeans=dict(num_samples=1024, iters=50, seed=0),
    rearranger=dict(type='FeatureRearranger', embed_channels=128, depth=2, heads=4,
                    head_channels=32, refine=True),
    mapper=dict(type='SemanticMapper', width=32, num_blocks=4),
    train_part='rearranger',
    mapper_input='seg',
    losses=dict(rec=1.0, mask=1.0, style=10.0, flip_prob=0.5, temperature=0.1, mask_margin=0.02),
    inversion=dict(steps=2000, lr=1.0, optimizer=dict(type='Ranger'),
                   perceptual=dict(type='lpips', net='alex'), perceptual_weight=0.8),
)
