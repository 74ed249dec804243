# Scratch on SynthScenes: the source architecture with random weights trained on the 100 target
# images with the shared transfer budget: the lower bound.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
model = dict(transfer=dict(type='Scratch'))
