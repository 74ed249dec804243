"""FeatureRearranger: convex combinations of the source's vectors, the zero-initialised
refinement, gradients, and learning to move features to a new mask."""
import pytest
import torch

from catgen.models.rearrangers import FeatureRearranger, sinusoidal_position_encoding

K, C = 4, 6


def masks(b=2, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, K, (b, size, size), generator=g)


def test_position_encoding_distinguishes_every_position():
    pe = sinusoidal_position_encoding(16, 8, 8)
    assert pe.shape == (16, 8, 8)
    flat = pe.flatten(1).t()
    assert torch.cdist(flat, flat).add(torch.eye(64) * 10).min() > 1e-3
    with pytest.raises(ValueError, match='multiple of 4'):
        sinusoidal_position_encoding(6, 4, 4)


def test_output_is_the_attention_average_of_the_source_values():
    torch.manual_seed(0)
    r = FeatureRearranger(K, C, value_channels=3, embed_channels=16, depth=1, heads=2,
                          head_channels=8, refine=False)
    feats, skip = torch.randn(2, C, 8, 8), torch.randn(2, 3, 8, 8)
    src, tgt = masks(), masks(seed=1)
    out, out_skip, attn = r(feats, src, tgt, skip)
    assert out.shape == feats.shape and out_skip.shape == skip.shape
    assert attn.shape == (2, 64, 64)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 64), atol=1e-5) and (attn >= 0).all()
    values = torch.cat([feats, skip], 1).flatten(2)  # [B, C+3, 64]
    expect = torch.einsum('bcs,bts->bct', values, attn).view(2, C + 3, 8, 8)
    assert torch.allclose(torch.cat([out, out_skip], 1), expect, atol=1e-5)
    # the refinement starts as the identity: same output with it
    torch.manual_seed(0)
    r2 = FeatureRearranger(K, C, value_channels=3, embed_channels=16, depth=1, heads=2,
                           head_channels=8, refine=True)
    r2.load_state_dict(r.state_dict(), strict=False)
    out2, skip2, _ = r2(feats, src, tgt, skip)
    assert torch.allclose(out2, out, atol=1e-6) and torch.allclose(skip2, out_skip, atol=1e-6)


def test_gradients_reach_queries_keys_and_refinement():
    torch.manual_seed(0)
    r = FeatureRearranger(K, C, value_channels=0, embed_channels=16, depth=1, heads=2,
                          head_channels=8)
    out, extra, _ = r(torch.randn(2, C, 8, 8), masks(), masks(seed=1))
    assert extra is None
    out.square().mean().backward()
    for name in ('query_embed', 'key_embed', 'key_features', 'to_q', 'to_k'):
        assert getattr(r, name).weight.grad.abs().sum() > 0, name
    assert r.refine[-1].weight.grad.abs().sum() > 0


def test_learns_to_mirror_features_to_a_mirrored_mask():
    torch.manual_seed(0)
    r = FeatureRearranger(K, C, value_channels=0, embed_channels=32, depth=1, heads=2,
                          head_channels=16, refine=False)
    opt = torch.optim.Adam(r.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(3)

    def loss_on(batch_seed):
        src = masks(4, 8, batch_seed)
        feats = torch.nn.functional.one_hot(src, K).permute(0, 3, 1, 2).float()
        feats = torch.cat([feats, torch.randn(4, C - K, 8, 8, generator=g)], 1)
        out, _, _ = r(feats, src, src.flip(-1))
        return (out - feats.flip(-1)).abs().mean()

    with torch.no_grad():
        first = float(loss_on(100))
    for step in range(150):
        opt.zero_grad()
        loss = loss_on(step)
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(loss_on(100)) < 0.5 * first


def test_bad_inputs():
    r = FeatureRearranger(K, C, value_channels=3, embed_channels=16, depth=1)
    with pytest.raises(ValueError, match='feature channels'):
        r(torch.randn(1, C + 1, 4, 4), masks(1, 4), masks(1, 4), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match='extra channels'):
        r(torch.randn(1, C, 4, 4), masks(1, 4), masks(1, 4), torch.randn(1, 2, 4, 4))
