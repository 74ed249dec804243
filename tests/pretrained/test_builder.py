"""build_pretrained / pretrained_cache_key: config specs, injected modules, errors."""
import pytest
import torch

from catgen.pretrained import (ModuleAdapter, build_pretrained, pretrained_cache_key,
                               resolve_spec)
from catgen.pretrained.mmseg_segmenter import MMSegSegmenter


class Halves(torch.nn.Module):
    classes = ['dark', 'light']

    def __init__(self):
        super().__init__()
        self.register_buffer('w', torch.ones(1))

    def forward(self, x):                         # float [-1, 1] in, [B, 2, H, W] out
        m = x.mean(1, keepdim=True) * self.w
        return torch.cat([-m, m], dim=1)


def test_modules_are_adapted_to_uint8_input_and_keyed_by_state():
    net = Halves().train()
    seg = build_pretrained(net)
    assert isinstance(seg, ModuleAdapter) and not net.training and seg.classes == Halves.classes
    img = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    assert seg(img).argmax(1).eq(1).all()                       # 255 -> +1 -> 'light'
    assert build_pretrained(seg) is seg
    key = pretrained_cache_key(net)
    assert key == seg.cache_key() and key['module'].endswith('Halves')
    net.w.fill_(2.0)
    assert pretrained_cache_key(net) != key                     # other weights, other key
    assert pretrained_cache_key(lambda x: x) is None            # a plain callable: not cached


def test_specs_short_names_aliases_and_errors():
    cls, kwargs = resolve_spec(dict(type='mmseg', config='c.py', checkpoint='k.pth', index=0))
    assert cls is MMSegSegmenter and kwargs == dict(config='c.py', checkpoint='k.pth',
                                                    feature_index=0)
    with pytest.raises(ValueError, match=r"segmenter type 'deeplab' is unknown.*'mmseg'"):
        build_pretrained(dict(type='deeplab'), what='segmenter')
    with pytest.raises(ValueError, match='No backbone'):
        build_pretrained(None, what='backbone')
    with pytest.raises(TypeError, match='got int'):
        build_pretrained(3)
    assert pretrained_cache_key(dict(type='deeplab')) is None
