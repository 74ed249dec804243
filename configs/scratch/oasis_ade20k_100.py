# Scratch: OASIS on ADE20K's 100 images from random weights (the lower bound), same schedule as
# configs/cat/oasis_ade20k_100.py.
_base_ = ['../cat/oasis_ade20k_100.py']
model = dict(
    generator=dict(num_classes=151), discriminator=dict(num_classes=151),
    transfer=dict(_delete_=True, type='Scratch'))
