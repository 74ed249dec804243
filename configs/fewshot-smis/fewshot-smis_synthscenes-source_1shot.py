# fewshot-smis_synthscenes-source_5shot.py with ONE labelled source image (the first of the
# nested 5-shot subset).
_base_ = ['./fewshot-smis_synthscenes-source_5shot.py']
num_shots = 1
train_dataloader = dict(dataset=dict(num_shots=num_shots))
