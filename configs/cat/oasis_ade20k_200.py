# oasis_ade20k_100.py with 200 target images (nested subsets; docs/transfer.md).
_base_ = ['./oasis_ade20k_100.py']
num_shots = 200
train_dataloader = dict(dataset=dict(num_shots=num_shots))
