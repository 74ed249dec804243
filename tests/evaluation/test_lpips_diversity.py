"""LPIPSDiversity: mean pairwise LPIPS among the K outputs of each label map."""
import sys
from pathlib import Path

import pytest
import torch
from mmengine.evaluator import Evaluator

from catgen.evaluation.metrics import LPIPSDiversity
from catgen.registry import METRICS, MODELS
from catgen.structures import SISDataSample

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'transfer'))
from tiny_oasis import batch as tiny_batch  # noqa: E402
from tiny_oasis import synth_cfg  # noqa: E402


def fakes(k, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (k, 3, size, size), dtype=torch.uint8, generator=g)


def test_identical_samples_have_zero_diversity(alex_file):
    metric = LPIPSDiversity(backbone_path=alex_file, device='cpu')
    same = fakes(1).expand(4, 3, 32, 32).clone()
    metric.process(None, [dict(fake_img=same), dict(fake_img=same.flip(-1))])
    out = metric.compute_metrics(metric.results)
    assert out['lpips_diversity_maps'] == 2
    assert out['lpips_diversity'] == pytest.approx(0, abs=1e-9)


def test_mean_over_pairs_then_maps_equals_direct_lpips(alex_file):
    metric = LPIPSDiversity(backbone_path=alex_file, device='cpu', batch_size=4)
    maps = [fakes(3, seed=1), fakes(2, seed=2)]  # 3 pairs, then 1 pair
    metric.process(None, [dict(fake_img=m) for m in maps])
    out = metric.compute_metrics(metric.results)
    net = metric.model.lpips

    def direct(a, b):
        with torch.no_grad():
            return float(net(a[None].float() / 127.5 - 1, b[None].float() / 127.5 - 1))

    m0 = sum(direct(maps[0][i], maps[0][j]) for i, j in ((0, 1), (0, 2), (1, 2))) / 3
    m1 = direct(maps[1][0], maps[1][1])
    assert out['lpips_diversity_maps'] == 2
    assert out['lpips_diversity'] == pytest.approx((m0 + m1) / 2, rel=1e-5)
    assert out['lpips_diversity'] > 0.01


def test_one_sample_per_map_asks_for_num_eval_samples(alex_file):
    metric = LPIPSDiversity(backbone_path=alex_file, device='cpu')
    with pytest.raises(ValueError, match='num_eval_samples'):
        metric.process(None, [dict(fake_img=fakes(1)[0])])
    with pytest.raises(KeyError, match='fake_img'):
        metric.process(None, [dict(gt_img=fakes(1)[0])])


def test_missing_backbone_fails_when_the_metric_is_built(tmp_path):
    with pytest.raises(FileNotFoundError, match='alexnet-owt-7be5be79.pth'):
        METRICS.build(dict(type='LPIPSDiversity', backbone_path=str(tmp_path / 'a.pth')))


def test_synthesizer_predict_outputs_through_an_evaluator(alex_file):
    """A tiny OASIS with num_eval_samples=3 -> val_step -> Evaluator(LPIPSDiversity)."""
    torch.manual_seed(0)
    model = MODELS.build(synth_cfg(4))
    model.num_eval_samples = 3
    data = tiny_batch(4, 2)
    outputs = model.val_step(data)
    assert isinstance(outputs[0], SISDataSample) and outputs[0].fake_img.shape == (3, 3, 32, 32)
    evaluator = Evaluator(dict(type='LPIPSDiversity', backbone_path=str(alex_file),
                               device='cpu'))
    evaluator.process(outputs, data)
    out = evaluator.evaluate(2)
    assert set(out) == {'diversity/lpips_diversity', 'diversity/lpips_diversity_maps'}
    assert out['diversity/lpips_diversity_maps'] == 2
    assert out['diversity/lpips_diversity'] > 0  # the generator uses its noise


def test_segmenter_form_names_its_outputs():
    """With a segmenter the distance is the LPIPS form in its features (no ImageNet weights):
    identical samples score 0, different ones more, under a name that says which features."""
    import torch as _torch
    from catgen.evaluation.metrics import LPIPSDiversity
    seg = dict(config='configs/segmenters/fcn_synthscenes-source.py',
               checkpoint='zoo://fcn_synthscenes-source')
    metric = LPIPSDiversity(segmenter=seg)
    g = _torch.Generator().manual_seed(0)
    same = _torch.randint(0, 255, (1, 3, 64, 64), generator=g, dtype=_torch.uint8)
    same = same.expand(2, -1, -1, -1)
    other = _torch.randint(0, 255, (2, 3, 64, 64), generator=g, dtype=_torch.uint8)
    metric.process(None, [dict(fake_img=same), dict(fake_img=other)])
    assert metric.results[0] == pytest.approx(0, abs=1e-9) and metric.results[1] > 0
    out = metric.compute_metrics(metric.results)
    assert set(out) == {'lpips_diversity_seg-fcn_synthscenes-source',
                        'lpips_diversity_seg-fcn_synthscenes-source_maps'}
