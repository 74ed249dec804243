"""SIS-UG on a tiny random prior: proxy masks, the rearranger stage (only it trains), the
mapper stage from a stage-1 checkpoint (only the mapper trains), inference, editing, inputs
and errors."""
import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict

from catgen.models.synthesizers import SISUGSynthesizer
from catgen.models.synthesizers.sisug_synthesizer import label_edges, region_means
from catgen.registry import MODELS

PRIOR = dict(type='StyleGAN2Generator', size=32, style_dim=16, n_mlp=2, channel_multiplier=1,
             max_channels=16, channel_base=128, fused_modconv=False)
C, K = 4, 5


def build(**kw):
    torch.manual_seed(0)
    kw.setdefault('inversion', dict(steps=3, lr=0.1))
    return SISUGSynthesizer(
        prior=PRIOR, proxy_resolution=8, num_clusters=K,
        kmeans=dict(num_samples=16, iters=10),
        rearranger=dict(type='FeatureRearranger', embed_channels=16, depth=1, heads=2,
                        head_channels=8),
        mapper=dict(type='SemanticMapper', width=8, num_blocks=1),
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=C),
        latent_avg_samples=32, **kw)


def batch(b=2):
    return dict(inputs=dict(img=[torch.zeros(3, 32, 32, dtype=torch.uint8)] * b,
                            label=[torch.zeros(32, 32, dtype=torch.long)] * b))


def wrapper(model, part):
    opt = torch.optim.Adam(model.optim_params(part), lr=1e-3)
    return OptimWrapperDict(**{part: OptimWrapper(opt)})


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


def test_proxy_masks_are_fitted_once_and_seeded():
    model = build()
    assert not model.fitted
    with pytest.raises(RuntimeError, match='ProxyMaskHook'):
        model.train_step(batch(), wrapper(model, 'rearranger'))
    stats = model.fit_proxy_masks()
    assert model.fitted and stats['vectors'] == 16 * 8 * 8
    assert model.feature_layers == ('convs.1',)
    first = model.centres.clone()
    model.fit_proxy_masks()
    assert torch.equal(first, model.centres)
    feats, skip = model.state(model.sample_latents(3))
    assert feats.shape == (3, 16, 8, 8) and skip.shape == (3, 3, 8, 8)
    masks = model.proxy_masks(feats)
    assert masks.shape == (3, 8, 8) and masks.max() < K


def test_rearranger_stage_trains_only_the_rearranger():
    model = build()
    model.fit_proxy_masks()
    wrap = wrapper(model, 'rearranger')
    prior, mapper, rearranger = (snapshot(model.generator), snapshot(model.mapper),
                                 snapshot(model.rearranger))
    model.train()
    assert not model.generator.training
    logs = model.train_step(batch(), wrap)
    assert set(logs) >= {'loss_rec', 'loss_mask', 'loss_style'}
    assert all(torch.isfinite(v) for v in logs.values())
    assert not changed(prior, model.generator) and not changed(mapper, model.mapper)
    assert changed(rearranger, model.rearranger)
    with pytest.raises(ValueError, match="only that part"):
        model.optim_params('mapper')


def test_rearranger_losses_are_small_for_a_perfect_rearranger():
    """The losses' definitions: the identity on the own mask has zero reconstruction loss."""
    model = build(losses=dict(flip_prob=0.0))
    model.fit_proxy_masks()

    def identity(feats, source, target, extra):
        return feats, extra, None

    model.rearranger.forward = identity
    feats, skip = model.state(model.sample_latents(2))
    losses, _ = model.rearranger_losses(feats, skip)
    assert float(losses['loss_rec']) == 0
    source = model.proxy_masks(feats)
    mean, count = region_means(feats, source, K)
    # style: the identity keeps the source's per-cluster means where the target has the same
    assert count.sum() == 2 * 64 and mean.shape == (2, K, 16)


def test_region_means_by_hand():
    values = torch.tensor([1.0, 2.0, 3.0, 5.0]).view(1, 1, 2, 2)
    masks = torch.tensor([[0, 0], [1, 0]]).view(1, 2, 2)
    mean, count = region_means(values, masks, 3)
    assert mean[0, :, 0].tolist() == [pytest.approx(8 / 3), 3.0, 0.0]
    assert count[0].tolist() == [3, 1, 0]


def test_label_edges_by_hand():
    lab = torch.tensor([[[0, 0, 1], [0, 0, 1], [255, 255, 255]]])
    edges = label_edges(lab)[0, 0]
    assert edges.tolist() == [[0, 1, 1], [0, 1, 1], [0, 0, 0]]


def stage1_checkpoint(tmp_path):
    model = build()
    model.fit_proxy_masks()
    torch.nn.init.constant_(model.rearranger.to_q.bias, 0.3)
    path = tmp_path / 'stage1.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return model, str(path)


def test_mapper_stage_loads_stage1_and_trains_only_the_mapper(tmp_path):
    stage1, path = stage1_checkpoint(tmp_path)
    model = build(train_part='mapper', rearranger_checkpoint=path)
    assert torch.equal(model.centres, stage1.centres)
    assert torch.equal(model.rearranger.to_q.bias, stage1.rearranger.to_q.bias)
    assert not any(p.requires_grad for p in model.rearranger.parameters())
    wrap = wrapper(model, 'mapper')
    with pytest.raises(RuntimeError, match='PriorInversionHook'):
        model.train_step(batch(), wrap)
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    labels = torch.randint(0, C, (2, 32, 32), generator=g)
    out = model.prepare_pseudo_labels(imgs, labels, cache_file=str(tmp_path / 'inv.pth'),
                                      progress=False)
    assert out['proxy_masks'].shape == (2, 8, 8) and out['mse'].shape == (2,)
    assert model.pair_inputs.shape == (2, C, 32, 32)
    before = (snapshot(model.generator), snapshot(model.rearranger), snapshot(model.mapper))
    model.train()
    assert not model.rearranger.training and model.mapper.training
    logs = model.train_step(batch(), wrap)
    assert torch.isfinite(logs['loss_mapper'])
    assert not changed(before[0], model.generator) and not changed(before[1], model.rearranger)
    assert changed(before[2], model.mapper)
    with pytest.raises(FileNotFoundError, match='rearranger stage'):
        build(train_part='mapper', rearranger_checkpoint=str(tmp_path / 'missing.pth'))


def test_synthesis_is_a_function_of_the_sample_and_edits_real_images(tmp_path):
    model = build()
    model.fit_proxy_masks()
    model.eval()
    labels = torch.randint(0, C, (2, 32, 32), generator=torch.Generator().manual_seed(2))
    _, seg = model.conditioning(dict(label=labels, seg=None))
    assert seg.shape == (2, C, 32, 32)
    a = model.synthesize(seg, sample_ids=[0, 1])
    b = model.synthesize(seg, sample_ids=[0, 1])
    c = model.synthesize(seg, sample_ids=[5, 6])
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b) and not torch.allclose(a, c)
    imgs = torch.rand(2, 3, 32, 32) * 2 - 1
    edited, recon = model.edit(imgs, labels)
    assert edited.shape == recon.shape == (2, 3, 32, 32)
    # the edit keeps the inverted source: the same latents rearranged to its own proxy mask
    # differ from the reconstruction only through the rearranger
    assert torch.isfinite(edited).all()


def test_mapper_inputs():
    edge = build(mapper_input='edge')
    assert edge.mapper.in_channels == 1
    lab = torch.zeros(1, 32, 32, dtype=torch.long)
    lab[:, :, 16:] = 1
    _, x = edge.conditioning(dict(label=lab, seg=None))
    assert x.shape == (1, 1, 32, 32) and x.sum() == 2 * 32
    scrib = build(mapper_input='scribble')
    with pytest.raises(KeyError, match='SimulateScribbles'):
        scrib.conditioning(dict(label=lab, seg=None))
    s = torch.full_like(lab, 255)
    s[:, 3, 3] = 2
    labels, x = scrib.conditioning(dict(label=lab, seg=None, scribbles=s))
    assert torch.equal(labels, s) and x.sum() == 1 and x[0, 2, 3, 3] == 1


def test_bad_configurations():
    with pytest.raises(ValueError, match='train_part'):
        build(train_part='encoder')
    with pytest.raises(ValueError, match='mapper_input'):
        build(mapper_input='sketch')
    with pytest.raises(ValueError, match='unknown SIS-UG losses'):
        build(losses=dict(adv=1.0))
    with pytest.raises(ValueError, match='no feature level at 12'):
        SISUGSynthesizer(prior=PRIOR, rearranger=dict(type='FeatureRearranger'),
                         mapper=dict(type='SemanticMapper'), proxy_resolution=12,
                         data_preprocessor=dict(type='SISDataPreprocessor', num_classes=C),
                         latent_avg_samples=8)
    with pytest.raises(ValueError, match='takes no discriminator'):
        build(discriminator=dict(type='OASISDiscriminator'))


def test_generator_split_matches_the_full_forward():
    torch.manual_seed(0)
    gen = MODELS.build(dict(PRIOR, noise_mode='const'))
    w = gen.get_latent(torch.randn(2, 16))
    ref = gen(None, w, input_is_latent=True)
    for res in (4, 8, 16, 32):
        out, skip = gen.synthesis_until(w, res)
        assert skip.shape == (2, 3, res, res)
        assert torch.equal(gen.synthesis_from(out, skip, w, res), ref)
    with pytest.raises(ValueError, match='power of 2'):
        gen.synthesis_until(w, 64)


def test_margin_mask_loss_by_hand():
    """The hinge is zero once the target cluster wins by the margin, positive otherwise."""
    model = build(losses=dict(mask_margin=0.05, flip_prob=0.0))  # the default: a hinge
    model.fit_proxy_masks()
    feats, skip = model.state(model.sample_latents(2))
    target = model.proxy_masks(feats).roll(1, 0)
    centres = model.centres

    def to_centres(f, source, tgt, extra):  # every vector exactly on its target centre
        return centres[tgt].permute(0, 3, 1, 2), extra, None

    model.rearranger.forward = to_centres
    losses, acc = model.rearranger_losses(feats, skip)
    second = (centres @ centres.t() - 2 * torch.eye(K)).max(1)[0]
    expect = torch.relu(second[target] - 1 + 0.05).mean()
    assert float(losses['loss_mask']) == pytest.approx(float(expect), abs=1e-5)
    assert float(acc) == 1.0


def test_cross_entropy_mask_loss_by_hand():
    model = build(losses=dict(mask_margin=None, temperature=0.5, flip_prob=0.0))
    model.fit_proxy_masks()
    feats, skip = model.state(model.sample_latents(2))
    target = model.proxy_masks(feats).roll(1, 0)
    centres = model.centres

    def to_centres(f, source, tgt, extra):
        return centres[tgt].permute(0, 3, 1, 2), extra, None

    model.rearranger.forward = to_centres
    losses, _ = model.rearranger_losses(feats, skip)
    logp = torch.log_softmax(centres @ centres.t() / 0.5, dim=1)  # row: the vector's centre
    expect = -logp[target, target].mean()
    assert float(losses['loss_mask']) == pytest.approx(float(expect), abs=1e-5)


def test_source_candidates_keep_the_best_covering_source():
    model = build(source_candidates=4)
    model.fit_proxy_masks()
    model.eval()
    labels = torch.randint(0, C, (2, 32, 32), generator=torch.Generator().manual_seed(4))
    _, seg = model.conditioning(dict(label=labels, seg=None))
    target = model.map_masks(seg)
    w = model.choose_sources(target, sample_ids=[3, 9])
    assert torch.equal(w, model.choose_sources(target, sample_ids=[3, 9]))  # per sample id
    # by hand: every candidate's histogram intersection; the chosen one has the largest
    ids = [3 * 1_000_003 + 7_919 * (j + 1) for j in range(4)]
    cand = model.generator.get_latent(model.sample_noise(4, ids))
    feats, _ = model.state(cand, model.stored_noise())
    hist = torch.nn.functional.one_hot(model.proxy_masks(feats), K).flatten(1, 2).float().mean(1)
    want = torch.nn.functional.one_hot(target[0], K).flatten().view(-1, K).float().mean(0)
    score = torch.minimum(hist, want).sum(1)
    assert torch.allclose(w[0], cand[score.argmax()])
    out = model.synthesize(seg, sample_ids=[3, 9])
    assert out.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match='source_candidates'):
        build(source_candidates=0)
