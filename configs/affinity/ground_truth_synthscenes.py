# The true SynthScenes affinity (classes.json): the upper bound of the table in docs/affinity.md.
#   python tools/estimate_affinity.py configs/affinity/ground_truth_synthscenes.py \
#       --out work_dirs/affinity/ground_truth
synthscenes = 'data/synthscenes'
affinity_estimator = dict(type='GroundTruthAffinity')
