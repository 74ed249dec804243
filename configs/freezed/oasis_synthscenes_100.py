# FreezeD on SynthScenes: finetune-all with the discriminator's first 3 encoder blocks
# (body_down.0-2, the high-resolution ones) frozen.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='FreezeD', source_checkpoint=source_checkpoint,
                           num_frozen_blocks=3))
