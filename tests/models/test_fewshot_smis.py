"""Fewshot-SMIS on a tiny random prior: inversion, pseudo labels, the encoder's training step,
multimodal inference, the prior checkpoint and the inversion cache."""
import pytest
import torch
from mmengine.optim import OptimWrapper, OptimWrapperDict

from catgen.engine.optimizers import Ranger
from catgen.models.latent_inversion import invert_images
from catgen.models.synthesizers import FewshotSMISSynthesizer
from catgen.registry import MODELS

PRIOR = dict(type='StyleGAN2Generator', size=32, style_dim=16, n_mlp=2, channel_multiplier=1,
             max_channels=16, channel_base=128, fused_modconv=False)
ENCODER = dict(type='PSPEncoder', widths=(8, 8, 16, 16), units=(1, 1, 1, 1))
C = 4


def build(mode='dense', **kw):
    torch.manual_seed(0)
    kw.setdefault('inversion', dict(steps=5, lr=0.1))
    kw.setdefault('encoder', ENCODER)
    return FewshotSMISSynthesizer(
        prior=PRIOR, mode=mode, feature_resolution=16,
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=C),
        latent_avg_samples=64, **kw)


def shots(n=2, sparse=False):
    g = torch.Generator().manual_seed(1)
    imgs = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
    labels = torch.randint(0, C, (n, 32, 32), generator=g)
    if sparse:
        labels[:, :, 8:] = 255
    return imgs, labels


def batch(b=2):
    return dict(inputs=dict(img=[torch.zeros(3, 32, 32, dtype=torch.uint8)] * b,
                            label=[torch.zeros(32, 32, dtype=torch.long)] * b))


def test_inversion_reduces_the_reconstruction_error_and_restores_the_generator():
    torch.manual_seed(0)
    gen = MODELS.build(PRIOR).eval()
    avg = gen.mean_latent(64)[0]
    target_w = avg + 0.5 * torch.randn(2, gen.n_latent, gen.style_dim)
    noise = [getattr(gen.noises, f'noise_{i}') for i in range(gen.num_layers)]
    with torch.no_grad():
        images = gen(None, target_w, noise=noise, input_is_latent=True)
    gen.train()
    _, mse_short = invert_images(gen, images, avg, steps=1, lr=0.05, progress=False)
    w, mse = invert_images(gen, images, avg, steps=60, lr=0.05, progress=False)
    assert w.shape == (2, gen.n_latent, gen.style_dim)
    assert (mse < 0.5 * mse_short).all()
    assert gen.training and all(p.requires_grad for p in gen.parameters())
    with pytest.raises(ValueError, match=r'Tensor\[N, 3, 32, 32\]'):
        invert_images(gen, images[:, :, :16], avg, steps=1)


@pytest.mark.parametrize('mode', ['dense', 'sparse'])
def test_prepare_then_training_updates_only_the_encoder(mode):
    model = build(mode)
    imgs, labels = shots(sparse=mode == 'sparse')
    out = model.prepare_pseudo_labels(imgs, labels, progress=False)
    assert out['latents'].shape == (2, model.generator.n_latent, 16)
    if mode == 'dense':
        assert model.prototypes.shape[0] == C and model.present.all()
    else:
        assert model.support.shape[0] == model.support_labels.shape[0] == 2 * 16 * 4
    prior = {k: v.clone() for k, v in model.generator.state_dict().items()}
    enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    wrapper = OptimWrapperDict(encoder=OptimWrapper(Ranger(model.optim_params('encoder'),
                                                           lr=1e-3)))
    model.train()
    assert not model.generator.training  # the prior stays in eval mode
    logs = model.train_step(batch(), wrapper)
    assert set(logs) == {'loss_w'} and logs['loss_w'] > 0
    assert all(torch.equal(v, model.generator.state_dict()[k]) for k, v in prior.items())
    assert any(not torch.equal(v, model.encoder.state_dict()[k]) for k, v in enc.items()
               if v.is_floating_point())
    with pytest.raises(ValueError, match="'encoder'"):
        model.optim_params('generator')


def test_training_needs_prepared_pseudo_labels():
    model = build()
    wrapper = OptimWrapperDict(encoder=OptimWrapper(Ranger(model.optim_params('encoder'))))
    with pytest.raises(RuntimeError, match='PriorInversionHook'):
        model.train_step(batch(), wrapper)


def test_latent_regression_learns_on_a_fixed_pseudo_pair():
    """The loss is MSE(E(onehot) + w_avg, w): on one repeated pair it must fall."""
    model = build()
    model.prepare_pseudo_labels(*shots(), progress=False)
    opt = torch.optim.Adam(model.encoder.parameters(), lr=1e-2)
    torch.manual_seed(0)
    w = model.generator.get_latent(torch.randn(2, 16)).detach()
    feats, _ = model.prior_features(w)
    seg = model.data_preprocessor.one_hot(model.pseudo_labels(feats))
    model.encoder.train()
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(model.encode(seg), w[:, None].expand(-1, 8, -1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.2 * losses[0]


def test_multimodal_changes_only_with_the_sample_and_keeps_coarse_layers():
    model = build(multimodal=True, multimodal_from=5).eval()
    for name, p in model.generator.named_parameters():  # a trained prior injects noise
        if name.endswith('noise.weight'):
            p.data.fill_(0.5)
    seg = model.data_preprocessor.one_hot(torch.randint(0, C, (1, 32, 32)))
    seg2 = seg.expand(2, -1, -1, -1)
    a = model.synthesize(seg2, sample_ids=[0, 1])
    b = model.synthesize(seg2, sample_ids=[0, 1])
    assert torch.equal(a, b) and not torch.allclose(a[0], a[1])
    # unimodal: one image per label map whatever the sample id
    c = model.synthesize(seg2, sample_ids=[0, 1], multimodal=False)
    assert torch.allclose(c[0], c[1])
    # the replaced latents are layers 5.. only: the coarse W+ is the encoder's
    seen = {}
    gen = model.generator
    original = gen.forward

    def spy(seg, z, **kw):
        seen['w'] = z
        return original(seg, z, **kw)

    gen.forward = spy
    model.synthesize(seg2, sample_ids=[0, 1])
    w = seen['w']
    assert torch.allclose(w[0, :5], w[1, :5]) and not torch.allclose(w[0, 5:], w[1, 5:])
    assert torch.allclose(w[0, 5], w[0, 7])


def test_sparse_mode_synthesizes_from_the_scribbles():
    model = build('sparse')
    label = torch.randint(0, C, (1, 32, 32))
    scribbles = torch.full_like(label, 255)
    scribbles[:, 4:8, 4:20] = 1
    data = model.data_preprocessor(dict(inputs=dict(label=[label[0]],
                                                    scribbles=[scribbles[0]])))['inputs']
    lab, seg = model.conditioning(data)
    assert torch.equal(lab, scribbles) and seg.sum() == 4 * 16
    dense = build('dense')
    lab, seg = dense.conditioning(data)
    assert torch.equal(lab, label)


def test_prior_checkpoint_loading_and_inversion_cache(tmp_path):
    src = MODELS.build(PRIOR)
    torch.nn.init.constant_(src.input.input, 0.25)
    path = tmp_path / 'sg2.pth'
    torch.save({'state_dict': {f'generator_ema.module.{k}': v
                               for k, v in src.state_dict().items()}}, path)
    model = build(prior_checkpoint=str(path))
    assert torch.equal(model.generator.input.input, src.input.input)
    assert not any(p.requires_grad for p in model.generator.parameters())
    cache = tmp_path / 'work' / 'inv.pth'
    imgs, labels = shots()
    first = model.prepare_pseudo_labels(imgs, labels, cache_file=str(cache), progress=False)
    again = model.prepare_pseudo_labels(imgs, labels, cache_file=str(cache), progress=False)
    assert not first['from_cache'] and again['from_cache']
    assert torch.equal(first['latents'], again['latents'])
    other = model.prepare_pseudo_labels(imgs.flip(-1), labels, cache_file=str(cache),
                                        progress=False)
    assert not other['from_cache']  # other images: inverted again
    with pytest.raises(FileNotFoundError):
        build(prior_checkpoint=str(tmp_path / 'missing.pth'))


def test_bad_configurations():
    with pytest.raises(ValueError, match='mode'):
        build('scribble')
    with pytest.raises(ValueError, match='no feature level at 64'):
        FewshotSMISSynthesizer(prior=PRIOR, encoder=ENCODER, feature_resolution=64,
                               data_preprocessor=dict(type='SISDataPreprocessor',
                                                      num_classes=C))
    with pytest.raises(ValueError, match='discriminator'):
        build(discriminator=dict(type='StyleGAN2Discriminator', size=32))
    with pytest.raises(ValueError, match='styles'):
        build(encoder=dict(ENCODER, num_styles=3))


def test_inversion_with_lpips_from_a_local_backbone(alex_file, tmp_path):
    from catgen.models.latent_inversion import build_perceptual
    torch.manual_seed(0)
    gen = MODELS.build(PRIOR).eval()
    avg = gen.mean_latent(64)[0]
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    lpips = build_perceptual(dict(type='lpips', net='alex', backbone_path=str(alex_file)))
    d = lpips(images, images.flip(-1))
    assert d.shape == (1,) and float(d) > 0 and float(lpips(images, images)) < 1e-6
    w, mse = invert_images(gen, images, avg, steps=2, lr=0.1, perceptual=lpips, progress=False)
    assert torch.isfinite(w).all()
    with pytest.raises(FileNotFoundError, match='alexnet'):
        build_perceptual(dict(type='lpips', net='alex',
                              backbone_path=str(tmp_path / 'alexnet-owt-7be5be79.pth')))


def test_inversion_keeps_the_best_latents_and_uses_the_official_start():
    torch.manual_seed(0)
    gen = MODELS.build(PRIOR).eval()
    avg = gen.mean_latent(64)[0]
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    # one step at lr 0 with keep_best: the start itself, avg + N(0, 1/D) (the official scale)
    w, _ = invert_images(gen, images, avg, steps=1, lr=1e-12, optimizer=dict(type='Adam'),
                         progress=False)
    spread = (w - avg).std()
    assert 0.7 * gen.style_dim ** -0.5 < spread < 1.3 * gen.style_dim ** -0.5
    # a huge learning rate diverges; the kept latents are those of the best check (the start)
    kept, mse_kept = invert_images(gen, images, avg, steps=5, lr=1e3,
                                   optimizer=dict(type='Adam'), keep_best_every=1,
                                   noise='const', progress=False)
    last, mse_last = invert_images(gen, images, avg, steps=5, lr=1e3,
                                   optimizer=dict(type='Adam'), keep_best_every=0,
                                   noise='const', progress=False)
    assert (mse_kept <= mse_last).all() and not torch.equal(kept, last)
    with pytest.raises(ValueError, match='noise'):
        invert_images(gen, images, avg, steps=1, noise='fixed')


def test_prior_latent_avg_comes_from_the_checkpoint_when_it_has_one(tmp_path):
    src = MODELS.build(PRIOR)
    path = tmp_path / 'psp_style.pth'
    avg = torch.arange(16, dtype=torch.float32)
    torch.save({'g_ema_like': 0, 'state_dict': src.state_dict(), 'latent_avg': avg}, path)
    model = build(prior_checkpoint=str(path))
    assert torch.equal(model.latent_avg, avg)
