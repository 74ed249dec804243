"""CAT: the source generator reads A^T y_t; the D head follows the affinity initialisation rule."""
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

from catgen.affinity import AffinityMatrix
from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.registry import MODELS
from catgen.structures import SISDataSample
from catgen.models.generators import AffinityInputGenerator
from catgen.transfer.cat import CAT  # noqa: F401 (registers)

SIZE = 32
SOURCE = ['sky', 'grass', 'water', 'rock', 'tree']  # N_s = 5 -> 6 channels
TARGET = ['lawn', 'lake', 'forest']  # N_t = 3 -> 4 channels
A = np.array([[0.0, 0.9, 0.0, 0.0, 0.1],
              [0.2, 0.0, 0.8, 0.0, 0.0],
              [0.0, 0.3, 0.0, 0.1, 0.6]])


def synth_cfg(n_pre, n_model, transfer=None, discriminator=True, wrap=None):
    """A tiny OASIS synthesizer reading ``n_pre`` channels; with ``wrap`` (CAT's architecture)
    its generator is an AffinityInputGenerator around an ``n_model``-channel source generator.
    G and D take the class count from the data preprocessor unless given."""
    gen = dict(type='OASISGenerator', num_classes=n_model, z_dim=4, base_channels=4,
               channel_multipliers=(4, 2, 1), crop_size=SIZE, spade_hidden=8)
    wrap = (n_pre != n_model) if wrap is None else wrap
    if wrap:
        gen = dict(type='AffinityInputGenerator', generator=gen)
    return dict(
        type='OASISSynthesizer',
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n_pre),
        generator=gen,
        discriminator=dict(type='OASISDiscriminator', base_channels=2,
                           channel_multipliers=(1, 2, 2)) if discriminator else None,
        ema_momentum=0.5, transfer=transfer)


def batch(n, b=2):
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, n, (b, SIZE, SIZE), generator=g)
    img = torch.randint(0, 256, (b, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)
    return dict(inputs=dict(img=list(img), label=list(label)),
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(b)])


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    """A tiny source synthesizer (5 classes + don't care) saved in catgen's format, and the
    affinity matrix saved as a file."""
    torch.manual_seed(1)
    model = MODELS.build(synth_cfg(6, 6))
    model.generator_ema.update_parameters(model.generator)
    root = tmp_path_factory.mktemp('cat')
    path = root / 'source.pth'
    torch.save({'meta': {'dataset_meta': {'classes': ['unlabeled'] + SOURCE}},
                'state_dict': model.state_dict()}, path)
    AffinityMatrix(A, TARGET, SOURCE).save(root / 'affinity')
    return dict(ckpt=str(path), model=model, affinity=str(root / 'affinity.json'), root=root)


def build(source, tmp_path, **kw):
    torch.manual_seed(0)
    transfer = dict(type='CAT', source_checkpoint=source['ckpt'], target_classes=TARGET)
    if 'affinity' not in kw:
        transfer['affinity_file'] = source['affinity']
    transfer.update(kw)
    return MODELS.build(synth_cfg(4, 6, transfer))


def optim(model):
    return GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-2, betas=(0.0, 0.999))),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-2, betas=(0.0, 0.999)))))(model)


def test_generator_input_is_At_y_and_source_weights_are_loaded(source, tmp_path):
    model = build(source, tmp_path)
    gen = model.generator
    assert isinstance(gen, AffinityInputGenerator) and gen.num_classes == 4 and gen.z_dim == 4
    # the wrapped generator is the source EMA generator, unchanged
    src = source['model'].generator_ema.module.state_dict()
    for k, v in gen.generator.state_dict().items():
        assert torch.equal(v, src[k]), k
    seen = []
    gen.generator.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    data = model.data_preprocessor(batch(4), False)
    y_t = data['inputs']['seg']
    gen(y_t, torch.zeros(2, 4))
    m = np.zeros((4, 6))
    m[0, 0] = 1  # don't care -> don't care
    m[1:, 1:] = A
    expected = torch.einsum('ts,bthw->bshw', torch.tensor(m, dtype=torch.float32), y_t)
    assert seen[0].shape == (2, 6, SIZE, SIZE)
    assert torch.allclose(seen[0], expected, atol=1e-7)
    # per pixel: a "lake" pixel reads 0.2 sky + 0.8 water
    b, i, j = (data['inputs']['label'] == 2).nonzero()[0].tolist()
    assert torch.allclose(seen[0][b, :, i, j], torch.tensor([0, 0.2, 0, 0.8, 0, 0]))


def test_discriminator_head_follows_the_initialisation_rule(source, tmp_path):
    model = build(source, tmp_path)
    head = model.discriminator.layer_up_last
    src = source['model'].discriminator.layer_up_last
    assert head.out_channels == 5 and model.discriminator.num_classes == 4
    w_s, b_s = src.weight[:, :, 0, 0].detach(), src.bias.detach()
    w, b = head.weight[:, :, 0, 0].detach(), head.bias.detach()
    # rows: 0 fake, 1 don't care, 2 + c source/target class c (by hand, no matrix product)
    assert torch.equal(w[0], w_s[0]) and torch.equal(b[0], b_s[0])
    assert torch.equal(w[1], w_s[1]) and torch.equal(b[1], b_s[1])
    for t in range(len(TARGET)):
        exp_w = sum(float(A[t, s]) * w_s[2 + s] for s in range(len(SOURCE)))
        exp_b = sum(float(A[t, s]) * b_s[2 + s] for s in range(len(SOURCE)))
        assert torch.allclose(w[2 + t], exp_w, atol=1e-6)
        assert torch.allclose(b[2 + t], exp_b, atol=1e-6)
    # the rest of the discriminator is the source's
    src_d = source['model'].discriminator.state_dict()
    for k, v in model.discriminator.state_dict().items():
        if not k.startswith('layer_up_last'):
            assert torch.equal(v, src_d[k]), k


def test_affinity_written_to_the_work_dir_and_the_checkpoint_meta(source, tmp_path):
    calls = []

    def encoder(texts):
        calls.append(len(texts))
        g = np.random.default_rng(len(texts))
        return g.normal(size=(len(texts), 8))

    est = dict(type='TextAffinity', encoder=encoder, templates=('{}',), use_cache=False)
    model = build(source, tmp_path, affinity=est, source_classes=None)
    assert calls  # estimated once; source names came from the checkpoint's meta
    assert model.transfer.matrix.source_classes == tuple(SOURCE)
    # the layer holds the estimated matrix (channel space, don't care -> don't care)
    expected = torch.as_tensor(model.transfer.matrix.to_channel_matrix(), dtype=torch.float32)
    assert torch.allclose(model.generator.affinity.matrix, expected)
    model.transfer.before_run(SimpleNamespace(work_dir=str(tmp_path)))  # the TransferHook
    for suffix in ('json', 'png'):
        assert (tmp_path / f'affinity.{suffix}').is_file()
    saved = AffinityMatrix.load(tmp_path / 'affinity.json')
    assert np.allclose(saved.values, model.transfer.matrix.values)
    meta = model.transfer.checkpoint_meta()
    assert meta['type'] == 'CAT'
    assert np.allclose(np.asarray(json.loads(json.dumps(meta))['affinity']['values']),
                       model.transfer.matrix.values)


def test_fixed_vs_learned_affinity_after_a_step(source, tmp_path):
    for learn in (False, True):
        model = build(source, tmp_path, learn_affinity=learn)
        a0 = model.generator.affinity.weight.detach().clone()
        body0 = model.generator.generator.fc.weight.detach().clone()
        model.train_step(batch(4), optim(model))
        assert torch.equal(a0, model.generator.affinity.weight) != learn
        assert not torch.equal(body0, model.generator.generator.fc.weight)


def test_stage_one_trains_only_affinity_and_discriminator_head(source, tmp_path):
    model = build(source, tmp_path, stage1_iters=3)
    wrapper = optim(model)
    hub = MessageHub.get_current_instance()
    params = dict(model.named_parameters())  # parameters only (not spectral-norm buffers)
    before = {k: v.detach().clone() for k, v in params.items()}
    try:
        hub.update_info('iter', 0)
        model.transfer.before_train_iter(None, model, 0)  # what the TransferHook calls
        model.train_step(batch(4), wrapper)
        moved = {k for k, v in before.items()
                 if not torch.equal(v, params[k]) and not k.startswith('generator_ema')}
        assert moved == {'generator.affinity.weight', 'discriminator.layer_up_last.weight',
                         'discriminator.layer_up_last.bias'}
        assert not any(p.requires_grad for p in model.discriminator.body_down.parameters())
        hub.update_info('iter', 3)
        model.transfer.before_train_iter(None, model, 3)
        assert all(p.requires_grad for p in model.discriminator.parameters())
        fc0 = model.generator.generator.fc.weight.detach().clone()
        d0 = model.discriminator.body_down[0].conv1[0].weight_orig.detach().clone()
        model.train_step(batch(4), wrapper)
        assert not torch.equal(fc0, model.generator.generator.fc.weight)
        assert not torch.equal(d0, model.discriminator.body_down[0].conv1[0].weight_orig)
    finally:
        hub.update_info('iter', 0)


def test_checkpoint_keys_are_stable_and_reload(source, tmp_path):
    model = build(source, tmp_path)
    state = model.state_dict()
    assert 'generator.affinity.weight' in state and 'generator.generator.fc.weight' in state
    assert 'generator_ema.module.affinity.weight' in state
    again = build(source, tmp_path)
    again.load_state_dict(state, strict=True)


def test_missing_source_checkpoint_fails_at_once_naming_the_file(tmp_path):
    missing = str(tmp_path / 'nowhere' / 'oasis_source.pth')
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match='nowhere/oasis_source.pth'):
        MODELS.build(synth_cfg(4, 6, dict(type='CAT', source_checkpoint=missing,
                                          affinity=dict(type='TextAffinity'))))
    assert time.perf_counter() - t0 < 5


def test_wrong_generator_class_count_is_explained(source, tmp_path):
    transfer = dict(type='CAT', source_checkpoint=source['ckpt'],
                    affinity_file=source['affinity'], target_classes=TARGET)
    with pytest.raises(ValueError, match="6 source class names .* the model's 5 source channels"):
        MODELS.build(synth_cfg(4, 5, transfer))  # wrapped generator: 5 channels, source 6
    transfer['source_classes'] = SOURCE[:4]  # names that fit: the weights still do not
    with pytest.raises(ValueError, match='SOURCE num_classes'):
        MODELS.build(synth_cfg(4, 5, dict(transfer, affinity_file=None, affinity=dict(
            type='TextAffinity', encoder=lambda t: np.eye(len(t), 8), templates=('{}',),
            use_cache=False))))
    with pytest.raises(TypeError, match='AffinityInputGenerator'):
        MODELS.build(synth_cfg(4, 4, transfer, wrap=False))  # no affinity layer at all


def test_ade20k_config_without_data_fails_at_once_naming_what_goes_where(tmp_path):
    from mmengine.runner import Runner

    from catgen.utils.config import load_config
    cfg = load_config('configs/cat/oasis_ade20k_100.py', work_dir=str(tmp_path))
    assert cfg.model.data_preprocessor.num_classes == 151  # from ADE20K's declared classes
    cfg.model.transfer.source_checkpoint = str(tmp_path / 'checkpoints/oasis_coco-stuff.pth')
    cfg.model.transfer.target_dataset.data_root = str(tmp_path / 'data/ade/ADEChallengeData2016')
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        # shrink the model: the failure must come from the checks, not from building widths
        cfg.model.generator.generator.base_channels = 2
        cfg.model.discriminator.base_channels = 2
        Runner.from_cfg(cfg)
    msg = str(err.value)
    assert 'checkpoints/oasis_coco-stuff.pth' in msg and 'convert_oasis_checkpoint' in msg
    assert 'data/ade/ADEChallengeData2016' in msg and 'images/training' in msg
    assert time.perf_counter() - t0 < 20


def test_patchgan_input_conv_reads_target_maps_as_the_source_reads_At_y(tmp_path):
    def spade(n_pre, n_model, transfer=None):
        gen = dict(type='SPADEGenerator', num_classes=n_model, base_channels=2, crop_size=SIZE)
        if n_pre != n_model:
            gen = dict(type='AffinityInputGenerator', generator=gen)
        return dict(
            type='SPADESynthesizer', ema_momentum=None, transfer=transfer,
            data_preprocessor=dict(type='SISDataPreprocessor', num_classes=n_pre),
            generator=gen,
            discriminator=dict(type='MultiScalePatchGANDiscriminator', num_layers=2,
                               base_channels=4))
    torch.manual_seed(1)
    src = MODELS.build(spade(6, 6)).eval()
    ckpt = tmp_path / 'spade.pth'
    torch.save({'meta': {}, 'state_dict': src.state_dict()}, ckpt)
    AffinityMatrix(A, TARGET, SOURCE).save(tmp_path / 'aff')
    model = MODELS.build(spade(4, 6, dict(
        type='CAT', source_checkpoint=str(ckpt), affinity_file=str(tmp_path / 'aff.json'),
        target_classes=TARGET, source_classes=SOURCE))).eval()
    y_t = model.data_preprocessor(batch(4), False)['inputs']['seg']
    img = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        out = model.discriminator(img, y_t)
        ref = src.discriminator(img, model.generator.affinity(y_t))
    for scale_out, scale_ref in zip(out, ref):
        for a, b in zip(scale_out, scale_ref):
            assert torch.allclose(a, b, atol=1e-5)
