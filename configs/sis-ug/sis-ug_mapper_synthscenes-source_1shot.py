# sis-ug_mapper_synthscenes-source_5shot.py with 1 labelled image (the first of the nested
# subset of seed 0, Fewshot-SMIS's 1-shot image).
_base_ = ['./sis-ug_mapper_synthscenes-source_5shot.py']
num_shots = 1
train_dataloader = dict(dataset=dict(num_shots=num_shots))
