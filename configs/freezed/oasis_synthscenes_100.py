# FreezeD on SynthScenes: finetune-all with the discriminator's first 3 encoder blocks
# (body_down.0-2, the high-resolution ones) frozen. OASIS's discriminator does not read the label
# map (its class slice is the output head), so none of those levels is kept trainable; with a
# discriminator that reads it (PatchGAN) the label-reading layer stays trainable (docs/transfer.md).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='FreezeD', source_checkpoint=source_checkpoint,
                           num_frozen_blocks=3))
