"""OASISDiscriminatorSegmenter: a real OASISDiscriminator from a config and a catgen-style
checkpoint; the fake and don't-care channels are dropped, classes come from the checkpoint."""
import pytest
import torch

from catgen.pretrained import OASISDiscriminatorSegmenter, build_pretrained, pretrained_cache_key

SOURCE = ['grass', 'water', 'sand', 'flower']
CONFIG = ("model = dict(discriminator=dict(type='OASISDiscriminator', num_classes=5, "
          "base_channels=2, channel_multipliers=(1, 1), spectral_norm=False))\n")


@pytest.fixture
def files(tmp_path):
    from catgen.models.discriminators.oasis_discriminator import OASISDiscriminator
    cfg = tmp_path / 'oasis.py'
    cfg.write_text(CONFIG)
    torch.manual_seed(0)
    disc = OASISDiscriminator(num_classes=5, base_channels=2, channel_multipliers=(1, 1),
                              spectral_norm=False)
    with torch.no_grad():
        disc.layer_up_last.bias.copy_(torch.tensor([9.0, 9.0, 0.0, 0.0, 3.0, 0.0]))
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {f'module.discriminator.{k}': v        # DDP-wrapped, stripped
                               for k, v in disc.state_dict().items()},
                'meta': {'dataset_meta': {'classes': ['unlabeled', *SOURCE]}}}, ckpt)
    return cfg, ckpt, disc


def test_real_class_logits_and_features(files):
    cfg, ckpt, disc = files
    seg = build_pretrained(dict(type='oasis_discriminator', config=str(cfg),
                                checkpoint=str(ckpt), layers=['body_down.1', 'body_up.1']))
    assert isinstance(seg, OASISDiscriminatorSegmenter)
    assert seg.classes == SOURCE and seg.num_classes == 4
    assert not seg.training and not any(p.requires_grad for p in seg.parameters())
    img = torch.randint(0, 256, (2, 3, 6, 10), dtype=torch.uint8)   # padded to 8 x 12
    logits = seg(img)
    assert logits.shape == (2, 4, 6, 10)
    assert (logits.argmax(1) == 2).all()                              # 'sand', fake ignored
    x = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        ref, feats = disc(x.float() / 127.5 - 1, return_features=True)
    torch.testing.assert_close(seg(x), ref[:, 2:])
    f = seg.feature_map(x)
    assert f.shape == (1, feats['body_down.1'].shape[1] + feats['body_up.1'].shape[1], 8, 8)
    with pytest.raises(ValueError, match='divisible by 4'):
        seg.feature_map(img)


def test_cache_key_and_errors(files, tmp_path):
    cfg, ckpt, _ = files
    spec = dict(type='oasis_discriminator', config=str(cfg), checkpoint=str(ckpt))
    key = pretrained_cache_key(spec)
    assert build_pretrained(spec).cache_key() == key
    assert pretrained_cache_key(dict(spec, dontcare_index=1)) != key
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'generator.x': torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match=r'bad.pth holds no "discriminator.\*" weights.*'
                                         r'generator\.'):
        OASISDiscriminatorSegmenter(str(cfg), str(bad))
    with pytest.raises(FileNotFoundError, match='OASIS checkpoint not found.*tools/train.py'):
        OASISDiscriminatorSegmenter(str(cfg), str(tmp_path / 'none.pth'))
    with pytest.raises(ValueError, match='layers'):
        OASISDiscriminatorSegmenter(str(cfg), str(ckpt), layers=('body_up.7',))
    plain = tmp_path / 'plain.py'
    plain.write_text("model = dict(discriminator=dict(type='PatchGANDiscriminator'))\n")
    with pytest.raises(ValueError, match='needs an OASIS synthesizer config'):
        OASISDiscriminatorSegmenter(str(plain), str(ckpt))
