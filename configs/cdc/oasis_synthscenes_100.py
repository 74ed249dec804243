# CDC (Ojha et al. 2021) on SynthScenes: finetune-all plus 1000 * KL(source || adapted) of the
# softmax-normalised pairwise cosine similarities of one random generator block's features
# (same label maps and noise for the frozen source copy and the adapted generator). The
# anchor/patch-level discriminator scheme is omitted (OASIS's D is already per-pixel).
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
model = dict(transfer=dict(type='CDC', source_checkpoint=source_checkpoint, weight=1000.0))
