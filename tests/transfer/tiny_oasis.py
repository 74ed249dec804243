"""Tiny OASIS synthesizers, batches and source checkpoints shared by the transfer tests."""
import torch

from catgen.registry import MODELS
from catgen.structures import SISDataSample

SIZE = 32


def synth_cfg(n, transfer=None):
    """Config of a tiny OASISSynthesizer with ``n`` label channels at SIZE x SIZE."""
    return dict(
        type='OASISSynthesizer', data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n),
        generator=dict(type='OASISGenerator', num_classes=n, z_dim=4, base_channels=4,
                       channel_multipliers=(4, 2, 1), crop_size=SIZE, spade_hidden=8),
        discriminator=dict(type='OASISDiscriminator', num_classes=n, base_channels=2,
                           channel_multipliers=(1, 2, 2)),
        transfer=transfer)


def batch(n, b):
    """A seeded batch of ``b`` random images and label maps (ids 1..n-1), sample_idx 0..b-1."""
    g = torch.Generator().manual_seed(0)
    label = torch.randint(1, n, (b, SIZE, SIZE), generator=g)
    img = torch.randint(0, 256, (b, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    return dict(inputs=dict(img=list(img), label=list(label)),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(b)])


def save_source(path, n=5, seed=1):
    """Save a tiny ``n``-class source synthesizer in catgen's checkpoint format; return the path."""
    torch.manual_seed(seed)
    torch.save({'meta': {'iter': 0}, 'state_dict': MODELS.build(synth_cfg(n)).state_dict()}, path)
    return str(path)


def strategy_losses(model, inputs, part='generator'):
    """The strategy's loss terms for ``part`` on a generator forward made as the synthesizer's
    training step makes it (noise, and feature levels when the strategy reads them)."""
    if part == 'generator':
        fake, z, feats = model.generate_for_training(inputs)
        return model.transfer.generator_losses(model, inputs, fake, z=z, feats=feats)
    fake, z, _ = model.generate_for_training(inputs, grad=False)
    return model.transfer.discriminator_losses(model, inputs, fake, z=z)


def count_forwards(module):
    """Attach a forward hook counting ``module``'s calls; returns the list it appends to."""
    calls = []
    module.register_forward_hook(lambda m, args, out: calls.append(1))
    return calls
