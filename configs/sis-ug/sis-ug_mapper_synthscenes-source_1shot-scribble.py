# sis-ug_mapper_synthscenes-source_5shot-scribble.py with 1 labelled image.
_base_ = ['./sis-ug_mapper_synthscenes-source_5shot-scribble.py']
train_dataloader = dict(dataset=dict(num_shots=1))
