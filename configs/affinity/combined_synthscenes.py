# Combined affinity: the mmseg segmenter estimator and the text estimator, weighted 0.8 / 0.2.
#   python tools/estimate_affinity.py configs/affinity/combined_synthscenes.py \
#       --out work_dirs/affinity/combined
_base_ = ['./segmenter_synthscenes.py']
_segmenter = {{_base_.affinity_estimator}}
affinity_estimator = dict(
    _delete_=True,
    type='CombinedAffinity',
    estimators=[_segmenter, dict(type='TextAffinity', backend='sentence_transformers')],
    weights=[0.8, 0.2])
