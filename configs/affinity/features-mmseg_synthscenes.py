# Feature affinity with the mmseg source segmenter's backbone (last UNet decoder stage, full
# resolution): class prototypes on 200 source training images and the 100-shot target images.
#   python tools/estimate_affinity.py configs/affinity/features-mmseg_synthscenes.py \
#       --out work_dirs/affinity/features-mmseg
synthscenes = 'data/synthscenes'
source_dataset = dict(type='SynthScenesDataset', data_root=synthscenes, domain='source',
                      split='train', num_shots=200)
target_dataset = dict(type='SynthScenesDataset', data_root=synthscenes, domain='target',
                      split='train', num_shots=100)
affinity_estimator = dict(
    type='FeatureAffinity',
    backbone=dict(type='mmseg', config='configs/segmenters/fcn_synthscenes-source.py',
                  checkpoint='zoo://fcn_synthscenes-source',
                  feature_index=-1),
    source_dataset=source_dataset,
    target_dataset=target_dataset,
    scale=100.0)
