# fewshot-smis_synthscenes-source_5shot-sparse.py with ONE scribbled source image.
_base_ = ['./fewshot-smis_synthscenes-source_5shot-sparse.py']
num_shots = 1
train_dataloader = dict(dataset=dict(num_shots=num_shots))
