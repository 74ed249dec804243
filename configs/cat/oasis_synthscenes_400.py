# oasis_synthscenes_100.py with 400 target images (nested subsets; docs/transfer.md).
_base_ = ['./oasis_synthscenes_100.py']
num_shots = 400
train_dataloader = dict(dataset=dict(num_shots=num_shots))
