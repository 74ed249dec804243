# Training-free CAT on SynthScenes: the source OASIS behind the text affinity layer, no
# finetuning at all. No checkpoint of its own:
#   python tools/test.py configs/cat/oasis_synthscenes-training-free.py none
#   python tools/synthesize.py configs/cat/oasis_synthscenes-training-free.py none \
#       --labels data/synthscenes/target/annotations/val --out work_dirs/cat_free_samples
_base_ = ['./oasis_synthscenes_100.py']
model = dict(
    # the source generator as it was trained: no per-pixel noise
    generator=dict(generator=dict(pixel_noise_std=0.0)),
    discriminator=None,
    transfer=dict(
        _delete_=True,
        type='CATTrainingFree',
        source_checkpoint={{_base_.source_checkpoint}},
        affinity=dict(type='TextAffinity', backend='sentence_transformers'),
        source_classes=dict(type='SynthScenesDataset', data_root='data/synthscenes',
                            domain='source')))
