"""SegmenterAffinity on a constructed data set whose answer is known by construction.

Every pixel's red value encodes a source class (``R = 20 * k``); a fake segmenter (an injected
``nn.Module``) reads it back, so the histogram of each target class is exactly the mix of source
codes painted into its region.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from catgen.affinity import AffinityMatrix, SegmenterAffinity
from catgen.registry import AFFINITY_ESTIMATORS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_mmseg import tiny_mmseg  # noqa: E402

SOURCE = ['grass', 'water', 'sand', 'flower']
TARGET = ['lawn', 'shore', 'meadow', 'lava']


class ColourCodeSegmenter(torch.nn.Module):
    """Logits peak at source class ``k`` where the red channel is ``20 * k`` (input in [-1, 1]);
    the codes are a buffer, so the cache key sees them."""

    def __init__(self, num=len(SOURCE)):
        super().__init__()
        self.register_buffer('codes', torch.arange(num, dtype=torch.float32) * 20)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        red = (x[:, :1] + 1) * 127.5                              # [B, 1, H, W]
        return -(red - self.codes.view(1, -1, 1, 1)).abs()          # [B, K, H, W]


def _write(root, split, index, img, label):
    for sub, arr in (('images', img), ('annotations', label)):
        d = root / 'target' / sub / split
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(d / f'{index:06d}.png')


@pytest.fixture
def coded(tmp_path):
    """4 target images 8x8: lawn = grass; shore = half sand, half water; meadow = 3/4 grass,
    1/4 flower; a don't-care band painted as flower (must not count); lava absent."""
    root = tmp_path / 'coded'
    root.mkdir()
    (root / 'classes.json').write_text(json.dumps({
        'source': {'classes': SOURCE}, 'target': {'classes': TARGET}}))
    for i in range(4):
        label = np.full((8, 8), 255, np.uint8)
        code = np.full((8, 8), 3, np.int64)                        # don't care: flower
        label[0:2] = 0; code[0:2] = 0                              # lawn: grass
        label[2:4] = 1; code[2:4] = np.where(np.arange(8) % 2 == 0, 2, 1)   # shore
        label[4:6] = 2; code[4:6] = np.where(np.arange(8) % 4 == 0, 3, 0)   # meadow
        img = np.zeros((8, 8, 3), np.uint8)
        img[..., 0] = code * 20
        img[..., 1] = 7 * i                                       # images differ
        _write(root, 'train', i, img, label)
    return root


def _dataset(root):
    return dict(type='SynthScenesDataset', data_root=str(root), domain='target', split='train')


def test_known_histograms_zero_row_and_dont_care(coded, tmp_path):
    seg = ColourCodeSegmenter()
    est = SegmenterAffinity(segmenter=seg, dataset=_dataset(coded), cache_dir=tmp_path / 'c',
                            batch_size=3, progress=False)
    with pytest.warns(UserWarning, match='lava'):
        m = est.estimate(TARGET, SOURCE)
    assert isinstance(m, AffinityMatrix) and m.meta['estimator'] == 'SegmenterAffinity'
    np.testing.assert_allclose(m.row('lawn'), [1, 0, 0, 0])
    np.testing.assert_allclose(m.row('shore'), [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(m.row('meadow'), [0.75, 0, 0, 0.25])
    np.testing.assert_allclose(m.row('lava'), [0.25] * 4)           # zero-row rule
    assert m.meta['fallback_classes'] == ['lava']
    assert m.meta['pixels']['lawn'] == 4 * 16 and m.meta['num_images'] == 4
    assert seg.calls == 2                                            # batches of 3 + 1


def test_cache_hit_skips_the_model_and_settings_apply_after_it(coded, tmp_path):
    seg = ColourCodeSegmenter()
    kw = dict(dataset=_dataset(coded), cache_dir=tmp_path / 'c', progress=False,
              zero_row='uniform')
    with pytest.warns(UserWarning):
        SegmenterAffinity(segmenter=seg, **kw).estimate(TARGET, SOURCE)
    calls = seg.calls
    assert len(list((tmp_path / 'c').glob('segpred-*.npz'))) == 1
    with pytest.warns(UserWarning):
        m = SegmenterAffinity(segmenter=seg, top_k=1, **kw).estimate(TARGET, SOURCE)
    assert seg.calls == calls                                        # cache hit: no model call
    np.testing.assert_allclose(m.row('meadow'), [1, 0, 0, 0])
    # temperature sharpens counts: row ∝ counts ** (1 / T)
    with pytest.warns(UserWarning):
        m = SegmenterAffinity(segmenter=seg, temperature=0.5, **kw).estimate(TARGET, SOURCE)
    np.testing.assert_allclose(m.row('meadow'), [0.9, 0, 0, 0.1])
    # other weights (another state dict) -> another key -> the model runs again
    seg2 = ColourCodeSegmenter()
    seg2.codes[3] = 200.0
    with pytest.warns(UserWarning):
        SegmenterAffinity(segmenter=seg2, **kw).estimate(TARGET, SOURCE)
    assert seg2.calls > 0


def test_min_confidence_and_class_map(coded, tmp_path):
    class Unsure(ColourCodeSegmenter):
        def forward(self, x):
            logits = super().forward(x)
            red = (x[:, :1] + 1) * 127.5
            return torch.where(red > 30, logits * 0.0, logits)    # sand, flower: uniform

    est = SegmenterAffinity(segmenter=Unsure(), dataset=_dataset(coded), min_confidence=0.5,
                            use_cache=False, progress=False, zero_row='error',
                            class_map=['water', 'grass', 'sand', None])
    m = est.estimate(['lawn', 'shore'], SOURCE)
    np.testing.assert_allclose(m.row('lawn'), [0, 1, 0, 0])   # output 0 named 'water' by the map
    np.testing.assert_allclose(m.row('shore'), [1, 0, 0, 0])  # output 1 = 'grass'; sand unsure
    with pytest.raises(ValueError, match='lava'):
        est.estimate(['lava'], SOURCE)                         # zero_row='error'


def test_mismatch_errors(coded, tmp_path):
    est = SegmenterAffinity(segmenter=ColourCodeSegmenter(3), dataset=_dataset(coded),
                            use_cache=False, progress=False)
    with pytest.raises(ValueError, match='3 outputs and no class names.*4 source classes'):
        est.estimate(['lawn'], SOURCE)
    named = ColourCodeSegmenter()
    named.classes = ['grass', 'water', 'sand', 'tulip']
    est = SegmenterAffinity(segmenter=named, dataset=_dataset(coded), use_cache=False,
                            progress=False)
    with pytest.raises(ValueError, match=r"\['tulip'\] are not source classes.*\['flower'\]"):
        est.estimate(['lawn'], SOURCE)
    est = SegmenterAffinity(segmenter=ColourCodeSegmenter(), dataset=_dataset(coded),
                            use_cache=False, progress=False)
    with pytest.raises(ValueError, match=r"\['forest'\] are not classes of the target"):
        est.estimate(['forest'], SOURCE)
    with pytest.raises(ValueError, match='No target dataset'):
        SegmenterAffinity(segmenter=ColourCodeSegmenter()).estimate(['lawn'], SOURCE)
    with pytest.raises(FileNotFoundError, match='tools/train_segmenter.py'):
        SegmenterAffinity(segmenter=dict(type='mmseg', config='x.py', checkpoint='none.pth'),
                          dataset=_dataset(coded), use_cache=False).estimate(['lawn'], SOURCE)
    with pytest.raises(ValueError, match='segmenter type'):
        SegmenterAffinity(segmenter=dict(type='deeplab'), dataset=_dataset(coded),
                          use_cache=False).estimate(['lawn'], SOURCE)


def test_oasis_discriminator_segmenter_drops_fake_and_dont_care(coded, tmp_path):
    """A real OASISDiscriminator built from a config, weights from a catgen-style checkpoint whose
    head is set by hand: fake and don't-care logits are huge but must be ignored."""
    from catgen.models.discriminators.oasis_discriminator import OASISDiscriminator
    cfg = tmp_path / 'oasis.py'
    cfg.write_text("model = dict(discriminator=dict(type='OASISDiscriminator', num_classes=5, "
                   "base_channels=2, channel_multipliers=(1, 1), spectral_norm=False))\n")
    disc = OASISDiscriminator(num_classes=5, base_channels=2, channel_multipliers=(1, 1),
                              spectral_norm=False)
    with torch.no_grad():
        for p in disc.parameters():
            p.zero_()
        disc.layer_up_last.bias.copy_(torch.tensor([9.0, 9.0, 0.0, 0.0, 3.0, 0.0]))
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {f'discriminator.{k}': v for k, v in disc.state_dict().items()},
                'meta': {'dataset_meta': {'classes': ['unlabeled', *SOURCE]}}}, ckpt)
    est = SegmenterAffinity(segmenter=dict(type='oasis_discriminator', config=str(cfg),
                                           checkpoint=str(ckpt)),
                            dataset=_dataset(coded), cache_dir=tmp_path / 'c', progress=False)
    m = est.estimate(['lawn', 'shore'], SOURCE)
    np.testing.assert_allclose(m.values, [[0, 0, 1, 0], [0, 0, 1, 0]])  # channel 4 = 'sand'
    # the second run reads the cache (names included) without building the model
    from catgen.pretrained import OASISDiscriminatorSegmenter

    def no_build(*args, **kwargs):
        raise AssertionError('a cache hit must not build the segmenter')

    orig, OASISDiscriminatorSegmenter.__init__ = OASISDiscriminatorSegmenter.__init__, no_build
    try:
        m2 = SegmenterAffinity(segmenter=est.segmenter, dataset=_dataset(coded),
                               cache_dir=tmp_path / 'c', progress=False).estimate(
                                   ['lawn', 'shore'], SOURCE)
    finally:
        OASISDiscriminatorSegmenter.__init__ = orig
    np.testing.assert_allclose(m2.values, m.values)
    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'generator.x': torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match='no "discriminator.\\*" weights'):
        SegmenterAffinity(segmenter=dict(type='oasis_discriminator', config=str(cfg),
                                         checkpoint=str(bad)), dataset=_dataset(coded),
                          use_cache=False, progress=False).estimate(['lawn'], SOURCE)


def test_registered_and_built_from_config(coded):
    est = AFFINITY_ESTIMATORS.build(dict(type='SegmenterAffinity', min_confidence=0.3,
                                         dataset=_dataset(coded)))
    assert isinstance(est, SegmenterAffinity) and est.min_confidence == 0.3


def test_mmseg_segmenter_matches_mmseg_own_inference(coded, tmp_path):
    """A tiny mmseg model with random weights: the estimator's histograms equal those of the
    predictions mmseg makes itself (its LoadImageFromFile + PackSegInputs + test_step), with the
    checkpoint's class order mapped onto the source order."""
    from catgen.utils.setup_env import init_mmseg_model
    model_classes = ['sand', 'grass', 'flower', 'water']          # another order than SOURCE
    cfg, ckpt = tiny_mmseg(tmp_path, 4, model_classes)
    est = SegmenterAffinity(segmenter=dict(type='mmseg', config=str(cfg), checkpoint=str(ckpt)),
                            dataset=_dataset(coded), cache_dir=tmp_path / 'c', progress=False,
                            zero_row='uniform')
    with pytest.warns(UserWarning, match='lava'):
        m = est.estimate(TARGET, SOURCE)

    # the reference: mmseg's own pipeline and test_step
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import PackSegInputs
    from catgen.datasets.transforms.loading import map_to_channel_space, read_label_map
    net = init_mmseg_model(cfg, ckpt)
    counts = np.zeros((len(TARGET), len(SOURCE)))
    for i in range(4):
        r = LoadImageFromFile()({'img_path': str(coded / f'target/images/train/{i:06d}.png')})
        r = PackSegInputs()(r)
        with torch.no_grad():
            out = net.test_step({'inputs': [r['inputs']], 'data_samples': [r['data_samples']]})
        pred = out[0].pred_sem_seg.data[0].numpy()
        label = map_to_channel_space(read_label_map(
            coded / f'target/annotations/train/{i:06d}.png'), 5, 1)
        for t in range(1, 5):
            for k in pred[label == t]:
                counts[t - 1, SOURCE.index(model_classes[k])] += 1
    for t, name in enumerate(TARGET[:3]):
        np.testing.assert_allclose(m.row(name), counts[t] / counts[t].sum(), atol=1e-12)

    bad = tmp_path / 'bad.pth'
    torch.save({'state_dict': torch.load(ckpt, weights_only=True)['state_dict'],
                'meta': {'dataset_meta': {'classes': ['sand', 'grass', 'tulip', 'water']}}}, bad)
    with pytest.raises(ValueError, match=r"\['tulip'\] are not source classes.*class_map"):
        SegmenterAffinity(segmenter=dict(type='mmseg', config=str(cfg), checkpoint=str(bad)),
                          dataset=_dataset(coded), use_cache=False,
                          progress=False).estimate(['lawn'], SOURCE)
    m2 = SegmenterAffinity(segmenter=dict(type='mmseg', config=str(cfg), checkpoint=str(bad)),
                           class_map={'tulip': 'flower'}, dataset=_dataset(coded),
                           use_cache=False, progress=False).estimate(['lawn', 'shore'], SOURCE)
    np.testing.assert_allclose(m2.values, m.values[:2])
