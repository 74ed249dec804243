"""Training-free CAT: the source model plus the affinity layer, no optimisation at all.

CAT's observation that the source generator behind the affinity layer ``y_s = A^T y_t`` already
gives non-trivial target images without any finetuning (Careil et al., CVPR 2023). The model is
complete after building: evaluate or sample it directly, no checkpoint of its own::

    python tools/test.py configs/cat/oasis_synthscenes-training-free.py none
    python tools/synthesize.py configs/cat/oasis_synthscenes-training-free.py none \\
        --labels data/synthscenes/target/annotations/val --out work_dirs/cat_free_samples

Set ``model.discriminator=None`` in its config (nothing trains, so no discriminator is needed).
"""
from catgen.registry import TRANSFER_STRATEGIES

from .cat import CAT


@TRANSFER_STRATEGIES.register_module()
class CATTrainingFree(CAT):
    """:class:`~catgen.transfer.cat.CAT` with a fixed affinity layer and nothing trainable.

    Args:
        source_checkpoint, affinity, affinity_file, target_classes, source_classes,
        target_dataset, source_dataset, source_generator_prefix, load_discriminator: as
        :class:`~catgen.transfer.cat.CAT` (the discriminator, if the config builds one, is
        mapped to the target classes too, but never used).
    """

    requires_training = False

    def __init__(self, source_checkpoint=None, affinity=None, affinity_file=None,
                 target_classes=None, source_classes=None, target_dataset=None,
                 source_dataset=None, source_generator_prefix='generator_ema.module.',
                 load_discriminator=True):
        super().__init__(source_checkpoint=source_checkpoint, affinity=affinity,
                         affinity_file=affinity_file, target_classes=target_classes,
                         source_classes=source_classes, target_dataset=target_dataset,
                         source_dataset=source_dataset, learn_affinity=False,
                         init_discriminator_head=True, stage1_iters=0,
                         source_generator_prefix=source_generator_prefix,
                         load_discriminator=load_discriminator)

    def set_trainable(self, synth):
        for part in ('generator', 'discriminator'):
            module = getattr(synth, part, None)
            if module is not None:
                module.requires_grad_(False)

    def optim_params(self, synth, part):
        raise RuntimeError(
            'CATTrainingFree needs no training (the source weights and the affinity layer are the '
            'whole model): evaluate it with `python tools/test.py CONFIG none` or sample it with '
            '`python tools/synthesize.py CONFIG none --labels DIR --out DIR`.')
