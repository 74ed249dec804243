# oasis_cityscapes_100.py with 50 target images (nested subsets; docs/transfer.md).
_base_ = ['./oasis_cityscapes_100.py']
num_shots = 50
train_dataloader = dict(dataset=dict(num_shots=num_shots))
