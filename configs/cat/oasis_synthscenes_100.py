# CAT on SynthScenes: the small source OASIS (configs/oasis/oasis_synthscenes-source.py, 20
# classes) transferred to the target domain (11 classes, 3 of them novel) with 100 images.
# Architecture: the source generator (21 channels) behind the affinity layer that reads the 12
# target channels; the discriminator built for the target classes (its N+1 head initialised
# from the source head through A). Affinity: class-name text embeddings (all-MiniLM-L6-v2,
# offline; saved with the run as affinity.json + affinity.png and in every checkpoint's meta);
# learned during finetuning. The target classes (and the images for estimators that read them)
# are the training set's (model.transfer.target_dataset, filled in by the tools).
# Oracle variant with the true matrix: oasis_synthscenes-oracle_100.py.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'zoo://oasis_synthscenes-source'
data_root = 'data/synthscenes'
num_shots = 100
source_num_classes = 21  # the source generator's channels (20 classes + don't care)
model = dict(
    generator=dict(_delete_=True, type='AffinityInputGenerator',
                   generator=dict(_base_.model.generator, num_classes=source_num_classes)),
    transfer=dict(
        type='CAT',
        source_checkpoint=source_checkpoint,
        affinity=dict(type='TextAffinity', backend='sentence_transformers'),
        source_classes=dict(type='SynthScenesDataset', data_root=data_root, domain='source'),
        learn_affinity=True,
        init_discriminator_head=True,
        stage1_iters=0))
