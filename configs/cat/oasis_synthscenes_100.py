# CAT on SynthScenes: the small source OASIS (configs/oasis/oasis_synthscenes-source.py, 20
# classes) transferred to the target domain (11 classes, 3 of them novel) with 100 images.
# Affinity: class-name text embeddings (all-MiniLM-L6-v2, offline; saved with the run as
# affinity.{json,npz,png}); learned during finetuning; discriminator head initialised from it.
# Oracle variant with the true matrix: oasis_synthscenes-oracle_100.py.
_base_ = ['../_base_/schedules/transfer_synthscenes.py']
source_checkpoint = 'work_dirs/oasis_synthscenes-source/iter_1000.pth'
data_root = 'data/synthscenes'
num_shots = 100
source_num_classes = 21  # the generator and discriminator are the source's
model = dict(
    generator=dict(num_classes=source_num_classes),
    discriminator=dict(num_classes=source_num_classes),
    transfer=dict(
        type='CAT',
        source_checkpoint=source_checkpoint,
        affinity=dict(type='TextAffinity', backend='sentence_transformers'),
        source_classes=dict(type='SynthScenesDataset', data_root=data_root, domain='source'),
        target_dataset=dict(type='SynthScenesDataset', data_root=data_root, domain='target',
                            split='train', num_shots=num_shots),
        learn_affinity=True,
        init_discriminator_head=True,
        stage1_iters=0))
