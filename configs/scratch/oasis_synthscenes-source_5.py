# OASIS from scratch on 5 labelled SOURCE images (the nested subset of seed 0: the same 5 that
# Fewshot-SMIS gets in configs/fewshot-smis/fewshot-smis_synthscenes-source_5shot.py), with the
# shared transfer budget (2,000 iterations of batch 8), evaluated like Fewshot-SMIS on the 200
# source val label maps: the baseline of docs/fewshot_smis.md ("does the StyleGAN2 prior win at
# 1-5 shots?").
_base_ = ['../_base_/schedules/transfer_synthscenes.py',
          '../_base_/evaluation/synthscenes_source_sis.py']
num_shots = 5
model = dict(transfer=dict(type='Scratch'), num_eval_samples=4)
train_dataloader = dict(dataset=dict(domain='source', num_shots=num_shots))
val_dataloader = dict(dataset=dict(domain='source'))
test_dataloader = val_dataloader
test_evaluator = _base_.source_sis_evaluator
