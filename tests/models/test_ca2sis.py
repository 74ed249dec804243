"""CA2-SIS networks: official parameter counts (meta device), shapes, zero-initialised blocks,
the attention maps and loss, style tokens, random styles, the 3-layer discriminator."""
import pytest
import torch
import torch.nn.functional as F

from catgen.models.encoders import ClassStyleEncoder
from catgen.models.generators import CA2SISGenerator
from catgen.models.layers.gn_resblock import GNResBlock
from catgen.models.layers.spatial_transformer import SpatialTransformer, attention_loss
from catgen.registry import MODELS

TINY = dict(embed_input=16, embed_grid=4, embed_channels=32,
            stages=((32, 2, 8, True), (16, 2, 8, True), (16, 1, 8, False)),
            style_encoder=dict(num_down=4, num_up=3, num_features=2, style_dim=8),
            mapping=dict(z_dim=4, hidden=16))


def unzero(module):
    """Small weights in the zero-initialised convs (as after a first update): at build they
    make every block its skip path, so the styles do not reach the image yet."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d) and m.weight.abs().sum() == 0:
            torch.nn.init.normal_(m.weight, std=0.01)
    return module


def count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('classes, total, without_mapping, disc', [
    (19, 77_229_243, 48_985_019, 1_364_098),     # CelebAMask-HQ
    (151, 393_519_195, 174_586_715, 1_634_434),  # ADE20K (150 + don't care)
])
def test_official_parameter_counts(classes, total, without_mapping, disc):
    with torch.device('meta'):
        g = CA2SISGenerator(classes, mapping=dict())
        d = MODELS.build(dict(type='MultiScalePatchGANDiscriminator', num_classes=classes,
                              num_scales=2, num_layers=3, last_stride=2))
    assert count(g) == total
    assert count(g) - count(g.noise_encoder) == without_mapping
    assert count(d) == disc
    assert g.output_size == (256, 256)


def seg_of(labels, k):
    return F.one_hot(labels, k).permute(0, 3, 1, 2).float()


def test_generator_shapes_attention_maps_and_random_styles():
    torch.manual_seed(0)
    k = 5
    g = CA2SISGenerator(k, **TINY)
    assert g.output_size == (16, 16)
    labels = torch.randint(0, k, (2, 16, 16))
    seg = seg_of(labels, k)
    img, maps = g(seg, style_img=torch.rand(2, 3, 16, 16) * 2 - 1, return_attention=True)
    assert img.shape == (2, 3, 16, 16) and img.abs().max() <= 1
    assert [tuple(m.shape) for m in maps] == [(2, k, 4, 4), (2, k, 8, 8), (2, k, 16, 16)]
    rand = g(seg)  # random styles from the mapping network
    assert rand.shape == (2, 3, 16, 16)
    z = torch.randn(2, 4)
    # at build the zero-initialised convs hide the styles: the image is the layout's alone
    assert torch.equal(g(seg, z=z), g(seg, z=torch.randn(2, 4)))
    unzero(g)
    assert torch.equal(g(seg, z=z), g(seg, z=z))
    assert not torch.allclose(g(seg, z=z), g(seg, z=torch.randn(2, 4)))
    # absent classes get zero tokens from the mapping network
    only0 = seg_of(torch.zeros(1, 16, 16, dtype=torch.long), k)
    tokens = g.tokens(only0, z=z[:1])
    assert tokens[0, 1:].abs().sum() == 0 and tokens[0, 0].abs().sum() > 0
    with pytest.raises(ValueError, match='5-channel'):
        g(seg[:, :4])
    no_map = CA2SISGenerator(k, **dict(TINY, mapping=None))
    with pytest.raises(ValueError, match='style image'):
        no_map(seg)


def test_gradients_reach_every_part_from_the_image_and_attention_losses():
    torch.manual_seed(0)
    k = 4
    g = unzero(CA2SISGenerator(k, **dict(TINY, mapping=None)))
    seg = seg_of(torch.randint(0, k, (2, 16, 16)), k)
    img, maps = g(seg, style_img=torch.rand(2, 3, 16, 16), return_attention=True)
    loss = img.square().mean() + sum(attention_loss(m, seg) for m in maps)
    loss.backward()
    for name in ('encs', 'reshape_conv', 'out_conv'):
        assert getattr(g, name).weight.grad.abs().sum() > 0, name
    assert g.style_encoder.first_layer[0].weight.grad.abs().sum() > 0
    assert all(c.transformer_blocks[0].attn2.to_k.weight.grad.abs().sum() > 0 for c in g.cross)


def test_blocks_start_as_their_skip_paths():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 8, 8)
    block = GNResBlock(32, 32)
    assert torch.equal(block(x), x)
    up = GNResBlock(32, 16, upsample=True)
    assert torch.allclose(up(x), up.skip_connection(F.interpolate(x, scale_factor=2)))
    st = SpatialTransformer(32, heads=2, head_dim=8, context_dim=12, self_attention=True)
    out, maps = st(x, torch.randn(2, 3, 12))
    assert torch.equal(out, x) and maps.shape == (2, 3, 8, 8)


def test_attention_maps_are_the_head_averaged_cross_attention_logits():
    torch.manual_seed(0)
    st = SpatialTransformer(8, heads=2, head_dim=4, context_dim=6, self_attention=False)
    x, ctx = torch.randn(1, 8, 2, 3), torch.randn(1, 5, 6)
    _, maps = st(x, ctx)
    block = st.transformer_blocks[0]
    t = st.proj_in(st.norm(x)).flatten(2).transpose(1, 2)  # [1, 6, 8]
    q = block.attn2.to_q(block.norm2(t)).view(1, 6, 2, 4)
    k = block.attn2.to_k(ctx).view(1, 5, 2, 4)
    logits = torch.einsum('bnhd,bmhd->bhnm', q, k) / 2.0  # sqrt(4)
    expect = logits.mean(1).transpose(1, 2).reshape(1, 5, 2, 3)
    assert torch.allclose(maps, expect, atol=1e-5)
    seg = torch.zeros(1, 5, 4, 6)
    seg[:, 2] = 1
    loss = attention_loss(maps, seg)  # the mask is resized (nearest) to 2 x 3
    target = torch.zeros(1, 5, 2, 3)
    target[:, 2] = 1
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(expect, target), atol=1e-6)
    with pytest.raises(ValueError, match='class tokens'):
        attention_loss(maps, seg[:, :4])


def test_style_tokens():
    torch.manual_seed(0)
    k = 3
    enc = ClassStyleEncoder(k, num_down=4, num_up=3, num_features=2, style_dim=8)
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 8:] = 1  # class 2 absent
    tokens = enc(torch.rand(2, 3, 16, 16), seg_of(labels, k))
    assert tokens.shape == (2, k, 24) and enc.token_dim == 24
    # an absent class pools zeros: its token is tanh(bias) of every stage's output conv
    bias = torch.cat([torch.tanh(out[0].bias.view(k, 8)[2]) for out in enc.out_layers])
    assert torch.allclose(tokens[0, 2], bias, atol=1e-6)
    assert not torch.allclose(tokens[0, 0], tokens[0, 1])
    with pytest.raises(ValueError, match='num_up'):
        ClassStyleEncoder(k, num_down=3, num_up=3)


def test_ca2sis_discriminator_downsamples_with_every_middle_conv():
    d = MODELS.build(dict(type='PatchGANDiscriminator', num_classes=4, num_layers=3,
                          last_stride=2))
    feats = d(torch.zeros(1, 3, 64, 64), torch.zeros(1, 4, 64, 64))
    assert [f.shape[-1] for f in feats] == [33, 17, 9, 10]  # official padding 2
    spade = MODELS.build(dict(type='PatchGANDiscriminator', num_classes=4, num_layers=3))
    assert [f.shape[-1] for f in spade(torch.zeros(1, 3, 64, 64),
                                       torch.zeros(1, 4, 64, 64))][2] == 18
    with pytest.raises(ValueError, match='last_stride'):
        MODELS.build(dict(type='PatchGANDiscriminator', num_classes=4, last_stride=3))


def build_synth(**kw):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='CA2SISSynthesizer',
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=4),
        generator=dict(type='CA2SISGenerator', **TINY),
        discriminator=dict(type='MultiScalePatchGANDiscriminator', num_scales=2, num_layers=3,
                           base_channels=8, last_stride=2), **kw))


def test_synthesizer_steps_generator_then_discriminator():
    from mmengine.optim import OptimWrapper, OptimWrapperDict
    model = build_synth()
    assert model.generator_ema is None  # no EMA, as official
    order = []
    wraps = {}
    for part in ('generator', 'discriminator'):
        opt = torch.optim.Adam(model.optim_params(part), lr=1e-3, betas=(0.0, 0.9))
        wrap = OptimWrapper(opt)
        original = wrap.update_params
        wrap.update_params = (lambda loss, _p=part, _o=original: (order.append(_p), _o(loss)))
        wraps[part] = wrap
    labels = torch.randint(0, 4, (2, 16, 16))
    data = dict(inputs=dict(img=[torch.randint(0, 255, (3, 16, 16), dtype=torch.uint8)] * 2,
                            label=list(labels)))
    g0 = {k: v.clone() for k, v in model.generator.state_dict().items()}
    logs = model.train_step(data, OptimWrapperDict(**wraps))
    assert order == ['generator', 'discriminator']
    assert set(logs) >= {'loss_g_adv', 'loss_g_fm', 'loss_g_att', 'loss_d_fake', 'loss_d_real'}
    assert all(torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(g0[k], v) for k, v in model.generator.state_dict().items())


def test_synthesizer_inference_styles_and_refusals():
    model = build_synth().eval()
    unzero(model.generator)
    seg = seg_of(torch.randint(0, 4, (2, 16, 16)), 4)
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    a = model.synthesize(seg, style=img)
    assert torch.equal(a, model.generator(seg, style_img=img))
    r1 = model.synthesize(seg, sample_ids=[0, 1])
    assert torch.equal(r1, model.synthesize(seg, sample_ids=[0, 1]))  # per sample id
    out = model(dict(seg=seg, img=img, label=seg.argmax(1)), mode='tensor')
    assert torch.equal(out, a)  # eval_style='image': the batch's real images give the styles
    with pytest.raises(KeyError, match='LoadSISImageFromFile'):
        model(dict(seg=seg, label=seg.argmax(1)), mode='tensor')
    with pytest.raises(NotImplementedError, match='issue 16'):
        build_synth(transfer=dict(type='FinetuneAll'))
    with pytest.raises(ValueError, match='eval_style'):
        build_synth(eval_style='mean')
    with pytest.raises(NotImplementedError, match='mapping network'):
        build_synth(eval_style='random')


def test_synthscenes_config_builds(tiny_synthscenes):
    from catgen.utils.config import load_config
    cfg = load_config('configs/ca2sis/ca2sis_synthscenes-source.py',
                      {'train_dataloader.dataset.data_root': str(tiny_synthscenes)})
    model = MODELS.build(cfg.model)
    assert model.generator.output_size == (64, 64) and model.generator.num_classes == 21
    assert cfg.optim_wrapper.discriminator.optimizer.lr == 4e-4
