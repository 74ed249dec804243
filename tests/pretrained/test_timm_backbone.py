"""TimmBackbone: a tiny timm ViT with local random weights; tokens on the patch grid."""
import pytest
import torch

from catgen.pretrained import TimmBackbone, build_pretrained, pretrained_cache_key

timm = pytest.importorskip('timm')


def test_feature_map_on_the_patch_grid_and_frozen(tmp_path):
    model = timm.create_model('test_vit', pretrained=False, num_classes=0)
    ckpt = tmp_path / 'test_vit.pth'
    torch.save({'teacher': {f'module.backbone.{k}': v for k, v in model.state_dict().items()}},
               ckpt)
    spec = dict(type='timm', model_name='test_vit', checkpoint=str(ckpt), input_size=32)
    bb = build_pretrained(spec)
    assert isinstance(bb, TimmBackbone) and bb.cache_key() == pretrained_cache_key(spec)
    assert not bb.training and not any(p.requires_grad for p in bb.parameters())
    img = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    f = bb(img)
    patch = bb.model.patch_embed.patch_size[0]                     # resized to 32 x 32
    assert f.shape == (2, bb.model.num_features, 32 // patch, 32 // patch)
    torch.testing.assert_close(bb.feature_map(img), f)
    assert pretrained_cache_key(dict(spec, input_size=64)) != bb.cache_key()


def test_missing_weights_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'dino.pth.*Nothing is downloaded.*put the file'):
        TimmBackbone('vit_small_patch16_224.dino', str(tmp_path / 'dino.pth'))
    with pytest.raises(FileNotFoundError, match=r'checkpoints/timm/x.safetensors'):
        TimmBackbone('x', None)
