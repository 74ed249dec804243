# Feature affinity with the source OASIS discriminator's features (decoder blocks of its U-Net):
# class prototypes on 200 source training images and the 100-shot target images, cosine ->
# softmax. (No DINO / self-supervised weights exist offline here; a timm backbone would be
# backbone=dict(type='timm', model_name='vit_small_patch16_224.dino', checkpoint=<local file>).)
#   python tools/estimate_affinity.py configs/affinity/features-oasis_synthscenes.py \
#       --out work_dirs/affinity/features-oasis
synthscenes = 'data/synthscenes'
source_dataset = dict(type='SynthScenesDataset', data_root=synthscenes, domain='source',
                      split='train', num_shots=200)
target_dataset = dict(type='SynthScenesDataset', data_root=synthscenes, domain='target',
                      split='train', num_shots=100)
affinity_estimator = dict(
    type='FeatureAffinity',
    backbone=dict(type='oasis_discriminator', config='configs/oasis/oasis_synthscenes-source.py',
                  checkpoint='zoo://oasis_synthscenes-source',
                  layers=('body_up.5',)),
    source_dataset=source_dataset,
    target_dataset=target_dataset,
    scale=100.0)
