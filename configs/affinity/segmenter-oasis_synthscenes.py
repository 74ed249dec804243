# Segmenter affinity with the source OASIS discriminator as the segmenter (every CAT run has it):
# its class logits without the fake and don't-care channels, on the 100-shot target images.
#   python tools/estimate_affinity.py configs/affinity/segmenter-oasis_synthscenes.py \
#       --out work_dirs/affinity/segmenter-oasis
synthscenes = 'data/synthscenes'
target_dataset = dict(type='SynthScenesDataset', data_root=synthscenes, domain='target',
                      split='train', num_shots=100)
affinity_estimator = dict(
    type='SegmenterAffinity',
    segmenter=dict(type='oasis_discriminator', config='configs/oasis/oasis_synthscenes-source.py',
                   checkpoint='zoo://oasis_synthscenes-source'),
    dataset=target_dataset)
