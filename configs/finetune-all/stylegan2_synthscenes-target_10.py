# Finetune-all on StyleGAN2, 10 target shots (the base: adapt_stylegan2_synthscenes.py):
# every weight starts from the source (the EMA generator, as the papers) and trains.
_base_ = ['../_base_/schedules/adapt_stylegan2_synthscenes.py']
model = dict(transfer=dict(type='FinetuneAll', source_checkpoint={{_base_.source_checkpoint}}))
