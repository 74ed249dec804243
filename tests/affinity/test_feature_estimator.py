"""FeatureAffinity with an injected feature function whose prototypes are known by construction.

Each pixel's red value encodes a source class (``R = 20 * k``); the injected backbone returns the
one-hot of that code, pooled 2x2 (feature resolution half the image). Source prototypes are then
exactly the unit vectors e_k, and a target class painted half sand / half water has the prototype
(e_sand + e_water) / sqrt(2).
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from catgen.affinity import AffinityMatrix, FeatureAffinity
from catgen.affinity.feature_estimator import labels_to_weights
from catgen.registry import AFFINITY_ESTIMATORS

SOURCE = ['grass', 'water', 'sand', 'flower']
TARGET = ['lawn', 'shore', 'lava']


class CodeFeatures(torch.nn.Module):
    """One-hot of the red code, average-pooled 2x2: Tensor[B, 4, H/2, W/2]."""

    def __init__(self):
        super().__init__()
        self.register_buffer('codes', torch.arange(4, dtype=torch.float32) * 20)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        red = (x[:, :1] + 1) * 127.5
        onehot = ((red - self.codes.view(1, -1, 1, 1)).abs() < 5).float()
        return torch.nn.functional.avg_pool2d(onehot, 2)


def _write(root, domain, index, img, label):
    for sub, arr in (('images', img), ('annotations', label)):
        d = root / domain / sub / 'train'
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(d / f'{index:06d}.png')


@pytest.fixture
def coded(tmp_path):
    root = tmp_path / 'coded'
    root.mkdir()
    (root / 'classes.json').write_text(json.dumps({
        'source': {'classes': SOURCE}, 'target': {'classes': TARGET}}))
    for i in range(2):  # source: 2-row bands of each class, coded with its own colour
        label = np.repeat(np.arange(4, dtype=np.uint8), 2)[:, None].repeat(8, 1)
        img = np.zeros((8, 8, 3), np.uint8)
        img[..., 0] = label * 20
        _write(root, 'source', i, img, label)
    for i in range(2):  # target: lawn = grass rows, shore = sand/water 2x2 cells, rest ignore
        label = np.full((8, 8), 255, np.uint8)
        code = np.zeros((8, 8), np.int64)
        label[0:4] = 0
        label[4:8] = 1
        cells = (np.arange(8)[:, None] // 2 + np.arange(8)[None, :] // 2) % 2
        code[4:8] = np.where(cells[4:8] == 0, 2, 1)
        img = np.zeros((8, 8, 3), np.uint8)
        img[..., 0] = code * 20
        _write(root, 'target', i, img, label)
    return root


def _ds(root, domain):
    return dict(type='SynthScenesDataset', data_root=str(root), domain=domain, split='train')


def test_known_prototypes_rows_and_zero_row(coded, tmp_path):
    net = CodeFeatures()
    est = FeatureAffinity(backbone=net, source_dataset=_ds(coded, 'source'),
                          target_dataset=_ds(coded, 'target'), scale=10.0,
                          cache_dir=tmp_path / 'c', progress=False)
    with pytest.warns(UserWarning, match='lava'):
        m = est.estimate(TARGET, SOURCE)
    assert isinstance(m, AffinityMatrix) and m.meta['estimator'] == 'FeatureAffinity'
    cos = np.array([[np.nan if c is None else c for c in r] for r in m.meta['cosine'][:2]])
    np.testing.assert_allclose(cos, [[1, 0, 0, 0], [0, 2 ** -0.5, 2 ** -0.5, 0]], atol=1e-6)
    e = np.exp(10 * np.array([0, 2 ** -0.5, 2 ** -0.5, 0]))
    np.testing.assert_allclose(m.row('shore'), e / e.sum())
    assert m.row('lawn').argmax() == 0
    np.testing.assert_allclose(m.row('lava'), [0.25] * 4)
    assert m.meta['fallback_classes'] == ['lava']
    # prototypes are cached: a second estimator with other post-processing runs no backbone
    calls = net.calls
    with pytest.warns(UserWarning):
        m2 = FeatureAffinity(backbone=net, source_dataset=_ds(coded, 'source'),
                             target_dataset=_ds(coded, 'target'), scale=10.0, top_k=2,
                             cache_dir=tmp_path / 'c', progress=False).estimate(TARGET, SOURCE)
    assert net.calls == calls
    np.testing.assert_allclose(m2.row('shore'), [0, 0.5, 0.5, 0])
    assert len(list((tmp_path / 'c').glob('protos-*.npz'))) == 2


def test_label_downsampling_modes():
    labels = torch.tensor([[[1, 1, 2, 0], [1, 2, 0, 0]]])          # [1, 2, 4], 0 = don't care
    maj = labels_to_weights(labels, 3, (1, 2), 'majority')
    np.testing.assert_array_equal(maj[0, :, 0].numpy(), [[1, 0], [0, 0]])  # right cell: don't care
    area = labels_to_weights(labels, 3, (1, 2), 'area')
    np.testing.assert_allclose(area[0, :, 0].numpy(), [[0.75, 0], [0.25, 0.25]])
    near = labels_to_weights(labels, 3, (1, 2), 'nearest')
    assert near.shape == (1, 2, 1, 2)
    with pytest.raises(ValueError, match='label_downsample'):
        labels_to_weights(labels, 3, (1, 2), 'bilinear')


def test_unseen_source_class_gets_no_weight_and_errors(coded, tmp_path):
    class Coarse(CodeFeatures):  # 2x2 cells of 4 rows: majority keeps grass and sand only
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(super().forward(x), 2)

    est = FeatureAffinity(backbone=Coarse(), source_dataset=_ds(coded, 'source'),
                          target_dataset=_ds(coded, 'target'), use_cache=False, progress=False)
    with pytest.warns(UserWarning, match=r"\['water', 'flower'\] have no pixel"):
        m = est.estimate(['lawn', 'shore'], SOURCE)
    assert m.row('shore')[1] == 0 and m.row('shore')[3] == 0 and m.row('lawn').argmax() == 0
    assert m.meta['unseen_source_classes'] == ['water', 'flower']
    with pytest.raises(ValueError, match=r"target classes \['forest'\] are not classes"):
        est.estimate(['forest'], SOURCE)
    with pytest.raises(ValueError, match='No source_dataset'):
        FeatureAffinity(backbone=CodeFeatures(), target_dataset=_ds(coded, 'target'),
                        use_cache=False).estimate(['lawn'], SOURCE)
    with pytest.raises(FileNotFoundError, match='dino_vits16.pth.*Nothing is downloaded'):
        FeatureAffinity(backbone=dict(type='timm', model_name='vit_small_patch16_224.dino',
                                      checkpoint=str(tmp_path / 'dino_vits16.pth')),
                        source_dataset=_ds(coded, 'source'), target_dataset=_ds(coded, 'target'),
                        use_cache=False, progress=False).estimate(['lawn'], SOURCE)


def test_timm_backbone_with_local_weights(coded, tmp_path):
    """A tiny timm ViT with random weights saved locally: tokens reshaped to the patch grid."""
    timm = pytest.importorskip('timm')
    model = timm.create_model('test_vit', pretrained=False, num_classes=0)
    ckpt = tmp_path / 'test_vit.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    est = FeatureAffinity(backbone=dict(type='timm', model_name='test_vit', checkpoint=str(ckpt),
                                        input_size=64),
                          source_dataset=_ds(coded, 'source'), target_dataset=_ds(coded, 'target'),
                          cache_dir=tmp_path / 'c', progress=False)
    m = est.estimate(['lawn', 'shore'], SOURCE)
    m.validate()
    assert m.meta['backbone']['model_name'] == 'test_vit'


def test_registered():
    est = AFFINITY_ESTIMATORS.build(dict(type='FeatureAffinity', scale=5.0))
    assert isinstance(est, FeatureAffinity) and est.scale == 5.0
