# Finetune-all on SynthScenes: every weight from the source OASIS; the class-dependent layers
# (G's fc, SPADE mlp_shared.0, D's head) re-initialised for the 11 target classes.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='FinetuneAll', source_checkpoint=source_checkpoint))
