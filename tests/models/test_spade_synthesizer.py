"""SPADESynthesizer: the VAE style encoder (use_vae) in training and inference, and the instance
edge channel from the data preprocessor to G and D."""
import pytest
import torch

from catgen.engine.optimizers import GANOptimWrapperConstructor
from catgen.models.protocol import check_generator
from catgen.registry import MODELS
from catgen.structures import SISDataSample

N, SIZE, Z = 5, 32, 8


def batch(b=2, size=SIZE, edges=False):
    g = torch.Generator().manual_seed(0)
    label = torch.randint(1, N, (b, size, size), generator=g)
    img = torch.randint(0, 256, (b, 3, size, size), generator=g, dtype=torch.uint8)
    inputs = dict(img=list(img), label=list(label))
    if edges:
        inputs['edges'] = list(torch.randint(0, 2, (b, size, size), generator=g,
                                             dtype=torch.uint8))
    return dict(inputs=inputs,
                data_samples=[SISDataSample(metainfo=dict(sample_idx=i)) for i in range(b)])


def build(use_vae=True, instance_edges=False, kld=dict(type='KLDLoss', weight=0.05), **kw):
    torch.manual_seed(0)
    gen = dict(type='SPADEGenerator', base_channels=2, crop_size=SIZE, spade_hidden=8,
               use_vae=use_vae, z_dim=Z, encoder=dict(type='SPADEEncoder', input_size=16))
    cfg = dict(type='SPADESynthesizer', ema_momentum=None, generator=gen, kld_loss=kld,
               data_preprocessor=dict(type='SISDataPreprocessor', num_classes=N,
                                      instance_edges=instance_edges),
               discriminator=dict(type='MultiScalePatchGANDiscriminator', base_channels=2,
                                  num_layers=2),
               **kw)
    return MODELS.build(cfg)


def optimizers(model):
    return GANOptimWrapperConstructor(dict(
        generator=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.0, 0.9))),
        discriminator=dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.0, 0.9)))))(model)


def test_encoder_is_part_of_the_generator_and_its_optimizer():
    model = build()
    g = model.generator
    assert model.encodes_style and g.encoder.z_dim == Z and g.z_dim == Z
    check_generator(g)  # the protocol still holds: no class slice in the encoder
    assert not any(s.module.startswith('encoder') for s in g.class_slices())
    optim = optimizers(model)
    in_g = {id(p) for group in optim['generator'].optimizer.param_groups
            for p in group['params']}
    assert all(id(p) in in_g for p in g.encoder.parameters())
    # the generator defaults: the encoder takes G's width and z_dim (official netE uses ngf)
    assert g.encoder.layer1[0].weight_orig.shape[0] == 2
    assert not build(use_vae=False).encodes_style


def test_train_step_adds_kld_and_moves_the_encoder():
    model = build()
    optim = optimizers(model)
    e0 = [p.detach().clone() for p in model.generator.encoder.parameters()]
    logs = model.train_step(batch(), optim)
    assert set(logs) == {'loss_d_fake', 'loss_d_real', 'loss_g_adv', 'loss_g_fm', 'loss_g_kld'}
    assert all(torch.isfinite(v) for v in logs.values())
    assert all(not torch.equal(a, b) for a, b in zip(e0, model.generator.encoder.parameters()))
    assert 'loss_g_kld' not in build(use_vae=False).train_step(batch(), optimizers(
        build(use_vae=False)))


def test_kld_value_is_that_of_the_encoded_real_images():
    model = build()
    inputs = model.data_preprocessor(batch(), True)['inputs']
    losses = model.generator_loss(inputs)
    mu, logvar = model.generator.encode(inputs['img'])
    hand = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() * 0.05
    assert torch.allclose(losses['loss_g_kld'], hand, rtol=1e-5)


def encoder_grad(model, keys):
    model.zero_grad()
    losses = model.generator_loss(model.data_preprocessor(batch(), True)['inputs'])
    sum(losses[k] for k in keys).backward()
    w = model.generator.encoder.layer1[0].weight_orig.grad
    return None if w is None else w.abs().sum().item()


def test_gradients_reach_the_encoder_from_image_losses_and_from_kld():
    model = build()
    assert encoder_grad(model, ['loss_g_kld']) > 0
    assert model.generator.conv_img.weight.grad is None  # KLD does not touch the decoder
    assert encoder_grad(model, ['loss_g_adv']) > 0  # through z into the generator
    assert encoder_grad(model, ['loss_g_fm']) > 0


def test_z_is_the_reparameterised_code_of_the_real_image():
    model = build(train_noise='per_sample')
    inputs = model.data_preprocessor(batch(), True)['inputs']
    inputs['sample_idx'] = torch.tensor([0, 1])
    with torch.no_grad(), model._training_randomness(inputs):
        fake, z, _, (mu, logvar) = model.generate_with_style(inputs, grad=False)
    with model._training_randomness(inputs):
        eps = model.sampled_training_noise(inputs)  # the same first draw of the step
    assert torch.allclose(z, mu + torch.exp(0.5 * logvar) * eps)
    assert fake.shape == (2, 3, SIZE, SIZE)


def test_synthesize_random_style_is_fixed_per_sample_and_style_image_is_encoded():
    model = build().eval()
    inputs = model.data_preprocessor(batch(), False)['inputs']
    seg, img = inputs['seg'], inputs['img']
    a = model.synthesize(seg, sample_ids=[3, 4])
    assert torch.equal(a, model.synthesize(seg, sample_ids=[3, 4]))
    assert not torch.equal(a, model.synthesize(seg, sample_ids=[5, 6]))
    eps = model.sample_noise(2, [3, 4])
    assert torch.allclose(a, model.generator(seg, eps))  # z ~ N(0, I), fixed per id
    styled = model.synthesize(seg, sample_ids=[3, 4], style=img)
    with torch.no_grad():
        mu, logvar = model.generator.encode(img)
        hand = model.generator(seg, mu + torch.exp(0.5 * logvar) * eps)
    assert torch.allclose(styled, hand, atol=1e-6) and not torch.allclose(styled, a)
    # one style image for the whole batch
    one = model.synthesize(seg, sample_ids=[3, 4], style=img[:1])
    with torch.no_grad():
        mu, logvar = model.generator.encode(img[:1])
        hand = model.generator(seg, mu + torch.exp(0.5 * logvar) * eps)
    assert torch.allclose(one, hand, atol=1e-6)
    with pytest.raises(ValueError, match='style encoder'):
        build(use_vae=False).eval().synthesize(seg, style=img)


def test_instance_edges_reach_generator_and_discriminator():
    model = build(use_vae=False, instance_edges=True)
    g, d = model.generator, model.discriminator
    # num_classes stays the class count; the edge channel is one more input channel
    assert g.num_classes == d.num_classes == N
    assert g.fc.in_channels == N + 1
    assert d.discriminator_0.model0[0].in_channels == N + 1 + 3
    data = model.data_preprocessor(batch(edges=True), True)
    seg = data['inputs']['seg']
    assert seg.shape == (2, N + 1, SIZE, SIZE)
    logs = model.train_step(batch(edges=True), optimizers(model))
    assert all(torch.isfinite(v) for v in logs.values())
    # G and D read the edge channel, which comes last (official order: classes, edges, image)
    seg = seg.clone().requires_grad_()
    (g(seg).square().mean() + d(data['inputs']['img'], seg)[0][-1].mean()).backward()
    assert seg.grad[:, -1].abs().sum() > 0
    assert torch.equal(seg[:, -1].detach(), data['inputs']['edges'][:, 0])
    with pytest.raises(KeyError, match='with_instance=True'):
        model.data_preprocessor(batch(edges=False), True)


def test_a_network_that_cannot_read_the_edge_channel_is_refused():
    with pytest.raises(ValueError, match='extra_label_channels'):
        MODELS.build(dict(
            type='OASISSynthesizer',
            data_preprocessor=dict(type='SISDataPreprocessor', num_classes=N,
                                   instance_edges=True),
            generator=dict(type='OASISGenerator', z_dim=4, base_channels=4,
                           channel_multipliers=(4, 2, 1), crop_size=64, spade_hidden=8)))


@pytest.mark.parametrize('name,n,edges', [('cityscapes', 35, True), ('coco-stuff', 183, True),
                                          ('ade20k', 151, False)])
def test_official_configs_turn_instance_edges_on_where_the_data_has_them(name, n, edges):
    from catgen.models.data_preprocessors import SISDataPreprocessor
    from catgen.models.synthesizers.base_synthesizer import build_network
    from catgen.utils.config import load_config
    cfg = load_config(f'configs/spade/spade_{name}.py')
    pre = SISDataPreprocessor(**{k: v for k, v in cfg.model.data_preprocessor.items()
                                 if k != 'type'})
    assert pre.num_classes == n and pre.instance_edges == edges
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        load = [t for t in cfg[loader].dataset.pipeline if t.type == 'LoadSISAnnotations']
        assert load[0].get('with_instance', False) == edges
    assert cfg.model.generator.use_vae is False  # opt-in, as the official --use_vae flag
    assert cfg.model.kld_loss.weight == 0.05
    with torch.device('meta'):  # official widths; the edge channel is added automatically
        g = build_network(cfg.model.generator, n, pre.extra_label_channels)
        d = build_network(cfg.model.discriminator, n, pre.extra_label_channels)
    assert g.fc.in_channels == n + edges and g.num_classes == n
    assert d.discriminator_0.model0[0].in_channels == n + edges + 3
    if name == 'cityscapes':
        assert g.num_upsampling_layers == 'more' and (g.sh, g.sw) == (4, 8)
