# CAT on SynthScenes with the TRUE affinity matrix (SynthScenes' classes.json): the upper bound
# that estimated matrices are compared against. Otherwise as oasis_synthscenes_100.py.
_base_ = ['./oasis_synthscenes_100.py']
model = dict(transfer=dict(
    affinity=dict(_delete_=True, type='GroundTruthAffinity', classes_json='data/synthscenes')))
