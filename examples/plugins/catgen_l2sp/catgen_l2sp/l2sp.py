"""L2-SP (Li, Grandvalet & Davoine, ICML 2018): finetune with a penalty towards the source weights.

    loss_l2sp = alpha * sum_i (theta_i - theta_source_i)^2  [+ beta * sum_j theta_new_j^2]

over the generator parameters copied from the source (``i``) and, with ``beta > 0``, the
re-initialised class-dependent ones (``j``, the paper's "new" layers). Loading follows catgen's
``FinetuneAll``: the layers that read the label map are re-initialised, everything else starts
from the source, everything trains.
"""
import torch.nn as nn

from catgen.models.synthesizers.base_synthesizer import unwrap
from catgen.registry import TRANSFER_STRATEGIES
from catgen.transfer import FinetuneAll


@TRANSFER_STRATEGIES.register_module()
class L2SP(FinetuneAll):
    """Finetune-all plus the L2-SP penalty on the generator (``loss_l2sp``).

    Args:
        source_checkpoint: the source synthesizer checkpoint (catgen format).
        alpha: weight of the penalty towards the source weights.
        beta: weight of plain weight decay on the re-initialised generator layers (0 = off).
        **kwargs: ``FinetuneAll`` options (reinit_class_layers, class_layers,
            source_generator_prefix, load_discriminator).
    """

    def __init__(self, source_checkpoint=None, alpha=0.01, beta=0.0, **kwargs):
        super().__init__(source_checkpoint=source_checkpoint, **kwargs)
        self.alpha = alpha
        self.beta = beta
        self.names = []   # penalised generator parameters
        self.new_names = []  # re-initialised generator parameters
        self.source_params = nn.Module()  # theta_source as buffers: moved with the model, saved

    def adapt(self, synth):
        """Called once after the source weights are loaded: snapshot them."""
        gen = unwrap(synth.generator)
        fresh = set(self.reinitialised.get('generator', []))
        for name, p in gen.named_parameters():
            if name.rpartition('.')[0] in fresh:
                self.new_names.append(name)
            else:
                self.names.append(name)
                self.source_params.register_buffer(name.replace('.', '__'), p.detach().clone())

    def generator_losses(self, synth, inputs, fake, z=None, feats=None):
        """Called in every generator step; returns extra named loss terms (``loss_*``)."""
        params = dict(unwrap(synth.generator).named_parameters())
        loss = sum(((params[n] - getattr(self.source_params, n.replace('.', '__'))) ** 2).sum()
                   for n in self.names)
        loss = self.alpha * loss
        if self.beta:
            loss = loss + self.beta * sum((params[n] ** 2).sum() for n in self.new_names)
        return dict(loss_l2sp=loss)
