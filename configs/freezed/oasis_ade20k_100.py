# FreezeD: OASIS COCO-Stuff -> ADE20K with 100 images; body_down.0-2 of D frozen.
_base_ = ['../cat/oasis_ade20k_100.py']
model = dict(
    generator=dict(_delete_=True, type='OASISGenerator', z_dim=64, base_channels=64,
                   crop_size=256),
    transfer=dict(_delete_=True, type='FreezeD', num_frozen_blocks=3,
                  source_checkpoint={{_base_.source_checkpoint}}))
