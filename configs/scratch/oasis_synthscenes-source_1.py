# oasis_synthscenes-source_5.py with ONE labelled source image (Fewshot-SMIS's 1-shot image).
_base_ = ['./oasis_synthscenes-source_5.py']
num_shots = 1
train_dataloader = dict(dataset=dict(num_shots=num_shots))
