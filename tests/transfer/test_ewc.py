"""EWC: Fisher-weighted penalty towards the source generator."""
import os
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.models.protocol import TransferableDiscriminator, TransferableGenerator
from catgen.registry import MODELS
from catgen.transfer.ewc import (EWC, discriminator_log_likelihood,  # noqa: F401 (registers)
                                 random_label_maps, source_shaped_copy)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_oasis import SIZE, save_source, synth_cfg  # noqa: E402,F401
from tiny_oasis import batch as tiny_batch  # noqa: E402


def batch(n, b=2):
    return tiny_batch(n, b)


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    """A tiny 5-class source synthesizer in catgen's checkpoint format."""
    return save_source(tmp_path_factory.mktemp('ewc') / 'src.pth', n=5)


def build(n, ckpt, **kw):
    torch.manual_seed(0)
    transfer = dict(type='EWC', source_checkpoint=ckpt, num_fisher_samples=2,
                    fisher_batch_size=2, **kw)
    return MODELS.build(synth_cfg(n, transfer))


def test_penalty_is_zero_at_source_and_grows_with_distance(ckpt):
    model = build(4, ckpt)  # another class count: fc and mlp_shared are not penalised
    ewc = model.transfer
    assert float(ewc.penalty(model.generator).detach()) == 0
    names = ewc.fisher.names
    assert 'fc.weight' not in names and 'body.0.conv_0.weight_orig' in names
    assert not any('mlp_shared.0.' in n for n in names)  # re-initialised: no penalty
    params = dict(model.generator.named_parameters())
    direction = {n: torch.randn_like(params[n]) for n in names}
    source = {n: params[n].detach().clone() for n in names}
    values = []
    for t in (0.0, 0.01, 0.02, 0.04):
        with torch.no_grad():
            for n in names:
                params[n].copy_(source[n] + t * direction[n])
        values.append(float(ewc.penalty(model.generator).detach()))
    assert values[0] == 0 and values[1] < values[2] < values[3]
    assert values[3] == pytest.approx(16 * values[1], rel=1e-4)  # quadratic in the distance
    losses = ewc.generator_losses(model, {}, None)
    assert float(losses["loss_ewc"].detach()) == pytest.approx(ewc.weight * values[3], rel=1e-5)


def test_fisher_is_non_negative_saved_and_seeded(ckpt):
    model = build(5, ckpt, fisher_normalization='none')
    fisher = dict(model.transfer.fisher.items())
    flat = torch.cat([f.reshape(-1) for f in fisher.values()])
    assert (flat >= 0).all() and flat.sum() > 0
    state = model.state_dict()
    assert 'transfer.fisher.body__0__conv_0__weight_orig' in state
    assert 'transfer.source_params.body__0__conv_0__weight_orig' in state
    again = dict(build(5, ckpt, fisher_normalization='none').transfer.fisher.items())
    assert all(torch.equal(fisher[n], again[n]) for n in fisher)
    normalised = torch.cat([f.reshape(-1) for _, f in build(5, ckpt).transfer.fisher.items()])
    assert normalised.mean() == pytest.approx(1.0, rel=1e-4)


def test_source_copy_and_log_likelihood(ckpt):
    model = build(4, ckpt)
    src_state = torch.load(ckpt, weights_only=True)['state_dict']
    d_state = {k[len('discriminator.'):]: v for k, v in src_state.items()
               if k.startswith('discriminator.')}
    disc = source_shaped_copy(model.discriminator, d_state)
    assert disc.layer_up_last.weight.shape[0] == 6  # the source's 5 classes + fake
    seg = random_label_maps(2, 5, (SIZE, SIZE), 4, torch.Generator().manual_seed(0))
    assert seg.shape == (2, 5, SIZE, SIZE) and seg[:, 0].sum() == 0
    img = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    for kind in ('real', 'label'):
        ll = discriminator_log_likelihood(disc, img, seg, kind)
        assert ll.dim() == 0 and float(ll) <= 0


def test_ewc_runs_two_train_steps(ckpt):
    model = build(4, ckpt)
    optim = GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))))(model)
    for i in range(2):
        MessageHub.get_current_instance().update_info('iter', i)
        logs = model.train_step(batch(4), optim)
    assert float(logs['loss_ewc'].detach()) > 0 and all(torch.isfinite(v) for v in logs.values())


# ---------------------------------------------------------------- per-sample Fisher, by hand
#: every (seg, z) the toy generator (and its deep copies) was called with, in order.
TOY_CALLS = []


class ScalarGenerator(TransferableGenerator, nn.Module):
    """img_n = a * seg_n[1] + b * z_n[0] on all 3 channels: two scalar weights ``a``, ``b``.

    Its mean is ``m_n = a * p_n + b * z_n`` with ``p_n`` the fraction of class-1 pixels."""

    def __init__(self, num_classes=3, size=(8, 8)):
        super().__init__()
        self.num_classes, self.z_dim, self.output_size = num_classes, 1, size
        self.a = nn.Parameter(torch.tensor(0.7))
        self.b = nn.Parameter(torch.tensor(-0.4))

    def forward(self, seg, z=None, return_features=False):
        TOY_CALLS.append((seg.detach().clone(), z.detach().clone()))
        img = self.a * seg[:, 1:2] + self.b * z[:, :1, None, None]
        return img.expand(-1, 3, -1, -1)


class ScalarDiscriminator(TransferableDiscriminator, nn.Module):
    """D(img) = c * mean(img) per image; log-likelihood ``mean_n log sigmoid(D(img_n))``."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.num_classes = num_classes
        self.c = nn.Parameter(torch.tensor(1.3))

    def forward(self, img, seg=None, return_features=False):
        return self.c * img.mean(dim=(1, 2, 3))

    def log_likelihood(self, output, seg, kind='real'):
        return F.logsigmoid(output).mean()


def hand_fisher(calls, n_samples, c=1.3, a=0.7, b=-0.4):
    """Closed form: ll_n = log sigmoid(c m_n), m_n = a p_n + b z_n, so
    d ll_n / da = sigmoid(-c m_n) c p_n and d ll_n / db = sigmoid(-c m_n) c z_n;
    F = mean over the first ``n_samples`` images of their squares."""
    p = torch.cat([seg[:, 1].double().mean(dim=(1, 2)) for seg, _ in calls])[:n_samples]
    z = torch.cat([z[:, 0].double() for _, z in calls])[:n_samples]
    s = torch.sigmoid(-c * (a * p + b * z)) * c
    return {'a': float(((s * p) ** 2).mean()), 'b': float(((s * z) ** 2).mean())}


@pytest.fixture
def dummy_ckpt(tmp_path):
    path = tmp_path / 'toy.pth'  # EWC checks at construction that the source file exists
    torch.save({'state_dict': {}}, path)
    return str(path)


def toy_fisher(ckpt, gen=None, fisher_normalization='none', **kw):
    """EWC's Fisher of the toy pair (``{'a': float, 'b': float}``) and the generator's calls."""
    gen = gen or ScalarGenerator()
    disc = ScalarDiscriminator(gen.num_classes)
    ewc = EWC(source_checkpoint=ckpt, fisher_normalization=fisher_normalization, **kw)
    TOY_CALLS.clear()
    fisher = ewc.estimate_fisher(gen, disc, gen.state_dict(), disc.state_dict(), ['a', 'b'])
    return {k: float(v) for k, v in fisher.items()}, list(TOY_CALLS)


def test_fisher_is_the_mean_of_per_sample_squared_gradients(dummy_ckpt):
    # 5 samples in batches of 2: three generator forwards, the last one's second image unused
    fisher, calls = toy_fisher(dummy_ckpt, num_fisher_samples=5, fisher_batch_size=2)
    assert [len(seg) for seg, _ in calls] == [2, 2, 2]
    expected = hand_fisher(calls, 5)
    assert fisher['a'] == pytest.approx(expected['a'], rel=1e-5)
    assert fisher['b'] == pytest.approx(expected['b'], rel=1e-5)
    # not the square of the batch-mean gradient (what one gradient per batch would give)
    p = torch.cat([seg[:, 1].double().mean(dim=(1, 2)) for seg, _ in calls])[:4]
    z = torch.cat([z[:, 0].double() for _, z in calls])[:4]
    s = torch.sigmoid(-1.3 * (0.7 * p + -0.4 * z)) * 1.3
    per_batch = float(((s * z).reshape(2, 2).mean(1) ** 2).mean())
    assert abs(per_batch - hand_fisher(calls, 4)['b']) > 1e-3
    # normalised to mean 1 over the penalised entries
    normed, _ = toy_fisher(dummy_ckpt, num_fisher_samples=5, fisher_batch_size=2,
                           fisher_normalization='mean')
    mean = (fisher['a'] + fisher['b']) / 2
    assert normed['a'] == pytest.approx(fisher['a'] / mean, rel=1e-5)
    assert normed['b'] == pytest.approx(fisher['b'] / mean, rel=1e-5)


def read_source_maps(root, num_classes=21):
    """The source training label maps as one-hot float Tensor[M, 21, H, W], read with PIL
    (on-disk ids 0..19 -> channels 1..20, 255 -> channel 0)."""
    import numpy as np
    from PIL import Image
    files = sorted((root / 'source' / 'annotations' / 'train').glob('*.png'))
    out = []
    for f in files:
        raw = np.asarray(Image.open(f)).astype(np.int64)
        label = torch.from_numpy(np.where(raw == 255, 0, raw + 1))
        out.append(F.one_hot(label, num_classes).permute(2, 0, 1).float())
    return torch.stack(out)


def data_indices(calls, maps, n):
    """For each of the first ``n`` maps the generator read: the index of the equal data map."""
    seen = torch.cat([seg for seg, _ in calls])[:n]
    idx = []
    for seg in seen:
        hits = [j for j in range(len(maps)) if torch.equal(seg, maps[j])]
        assert len(hits) == 1, 'a Fisher label map is not a map of the source data set'
        idx.append(hits[0])
    return idx


def test_fisher_reads_the_source_data_label_maps(dummy_ckpt, tiny_synthscenes, tmp_path):
    maps = read_source_maps(tiny_synthscenes)  # 16 source training maps, 64x64
    source = dict(type='SynthScenesDataset', data_root=str(tiny_synthscenes), domain='source',
                  split='train')

    def run(seed, n=16, data=source):
        return toy_fisher(dummy_ckpt, gen=ScalarGenerator(21, (64, 64)), num_fisher_samples=n,
                          fisher_batch_size=4, source_data=data, fisher_seed=seed)

    fisher, calls = run(0)
    order = data_indices(calls, maps, 16)
    assert sorted(order) == list(range(16))  # one pass: every map once
    assert order != list(range(16))  # in a random order, not the file order
    assert fisher == pytest.approx(hand_fisher(calls, 16), rel=1e-5)
    assert data_indices(run(0)[1], maps, 16) == order  # seeded
    assert data_indices(run(1)[1], maps, 16) != order
    # more samples than maps: a second pass in a new order
    longer = data_indices(run(0, n=20)[1], maps, 20)
    assert longer[:16] == order and len(set(longer[16:])) == 4
    # the path of a training config: its train_dataloader.dataset
    cfg = tmp_path / 'source_cfg.py'
    cfg.write_text(f'train_dataloader = dict(dataset=dict(type="SynthScenesDataset", '
                   f'data_root="{tiny_synthscenes}", domain="source", split="train", '
                   f'pipeline=[dict(type="LoadSISAnnotations")]))\n')
    assert data_indices(run(0, data=str(cfg))[1], maps, 16) == order
    # without source_data: random blocky maps, which are no data set map
    _, calls = toy_fisher(dummy_ckpt, gen=ScalarGenerator(21, (64, 64)), num_fisher_samples=4)
    assert not any(torch.equal(seg, m) for seg in calls[0][0] for m in maps)
    assert calls[0][0][:, 0].sum() == 0  # random maps never use don't care


def test_source_data_maps_are_resized_and_checked(dummy_ckpt, tiny_synthscenes):
    from catgen.transfer.ewc import SourceLabelMaps, build_source_dataset
    source = dict(type='SynthScenesDataset', data_root=str(tiny_synthscenes), domain='source',
                  split='train')
    maps = SourceLabelMaps(build_source_dataset(source), 21, (32, 32),
                           torch.Generator().manual_seed(0))
    batch = maps(3)
    assert batch.shape == (3, 21, 32, 32) and torch.equal(batch.sum(1), torch.ones(3, 32, 32))
    small = F.interpolate(read_source_maps(tiny_synthscenes), size=(32, 32), mode='nearest')
    assert all(any(torch.equal(seg, m) for m in small) for seg in batch)  # nearest, one-hot
    target = dict(source, domain='target')  # 12 channels: not the source generator's 21
    with pytest.raises(ValueError, match='SOURCE domain'):
        toy_fisher(dummy_ckpt, gen=ScalarGenerator(21, (64, 64)), num_fisher_samples=2,
                   source_data=target)
    with pytest.raises(FileNotFoundError, match='not a file'):
        toy_fisher(dummy_ckpt, gen=ScalarGenerator(21, (64, 64)), num_fisher_samples=2,
                   source_data='no/such/config.py')


def test_ewc_configs_read_the_source_training_set():
    from mmengine.config import Config
    cfg = Config.fromfile('configs/ewc/oasis_synthscenes_25.py')
    data = cfg.model.transfer.source_data
    assert data.type == 'SynthScenesDataset' and data.domain == 'source'
    assert data.split == 'train' and data.data_root == 'data/synthscenes'
    assert cfg.model.transfer.num_fisher_samples == 64
