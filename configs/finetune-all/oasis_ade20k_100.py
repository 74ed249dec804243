# Finetune-all: OASIS COCO-Stuff -> ADE20K with 100 images (same data, source and schedule as
# configs/cat/oasis_ade20k_100.py; class-dependent layers re-initialised for 151 channels).
_base_ = ['../cat/oasis_ade20k_100.py']
model = dict(
    generator=dict(num_classes=151), discriminator=dict(num_classes=151),
    transfer=dict(_delete_=True, type='FinetuneAll',
                  source_checkpoint={{_base_.source_checkpoint}}))
