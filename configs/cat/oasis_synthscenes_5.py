# oasis_synthscenes_100.py with 5 target image(s) (the nested subset of seed 0): CAT at the shot
# counts of Fewshot-SMIS (docs/fewshot_smis.md compares the two families).
_base_ = ['./oasis_synthscenes_100.py']
num_shots = 5
train_dataloader = dict(dataset=dict(num_shots=num_shots))
