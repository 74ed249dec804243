# Segmenter affinity: the LOCAL mmseg source segmenter (configs/segmenters/
# fcn_synthscenes-source-local.py, receptive field 3x3, trained with tools/train_segmenter.py)
# on the 100-shot SynthScenes target training images; row of a target class = histogram of
# predicted source classes over its pixels. (segmenter-context_synthscenes.py: the same with the
# context segmenter; docs/affinity.md says why the local one suits SynthScenes' mixtures.)
#   python tools/estimate_affinity.py configs/affinity/segmenter_synthscenes.py \
#       --out work_dirs/affinity/segmenter
synthscenes = 'data/synthscenes'
target_dataset = dict(type='SynthScenesDataset', data_root=synthscenes, domain='target',
                      split='train', num_shots=100)
affinity_estimator = dict(
    type='SegmenterAffinity',
    segmenter=dict(type='mmseg', config='configs/segmenters/fcn_synthscenes-source-local.py',
                   checkpoint='zoo://fcn_synthscenes-source-local'),
    dataset=target_dataset,
    min_confidence=0.0)
