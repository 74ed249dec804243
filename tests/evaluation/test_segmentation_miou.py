import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from catgen.evaluation.metrics import SegmentationMIoU
from catgen.evaluation.metrics.segmentation_miou import build_label_lut, iou_areas
from catgen.registry import METRICS

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tiny_mmseg import tiny_mmseg  # noqa: E402


class CodedSegmenter(nn.Module):
    """A fake segmenter: predicts class ``k`` where the red channel is ``10 * k``.

    Input float [B, 3, H, W] RGB in [-1, 1] (build_pretrained's ModuleAdapter convention); output
    one-hot logits [B, K, H, W]."""

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.calls = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        k = torch.round((x[:, 0] + 1) * 127.5 / 10).long().clamp(0, self.num_classes - 1)
        return F.one_hot(k, self.num_classes).permute(0, 3, 1, 2).float()


def coded(pred):
    """uint8 [3, H, W] image that CodedSegmenter segments as ``pred``."""
    pred = torch.as_tensor(pred)
    img = torch.zeros(3, *pred.shape, dtype=torch.uint8)
    img[0] = (pred * 10).to(torch.uint8)
    img[1] = 77  # other channels do not matter
    return img


LABEL = torch.tensor([[1, 1, 2, 2],
                      [1, 1, 2, 2],
                      [3, 3, 0, 0],
                      [3, 3, 0, 0]])
PRED = torch.tensor([[0, 0, 0, 1],
                     [0, 1, 1, 1],
                     [2, 2, 2, 2],
                     [1, 1, 0, 0]])


def sample(pred, label, real_pred=None):
    fake = coded(pred)
    real = coded(real_pred) if real_pred is not None else torch.zeros_like(fake)
    return dict(fake_img=fake, gt_img=real, gt_label=torch.as_tensor(label),
                img_path='/x/a.png')


def test_iou_by_hand_over_two_images_and_real_ceiling():
    seg = CodedSegmenter(4)  # class 3 is never labelled nor predicted: NaN, out of the mean
    m = SegmentationMIoU(segmenter=seg, num_classes=4, segment_real=True, batch_size=8,
                         progress=False, class_names=['a', 'b', 'c', 'unused'])
    # image 2 is 2x2, all class-1 labels (segmenter class 0), predicted right
    m.process(None, [sample(PRED, LABEL, real_pred=(LABEL - 1).clamp(min=0)),
                     sample(torch.zeros(2, 2, dtype=torch.long), torch.ones(2, 2, dtype=torch.long),
                            real_pred=torch.zeros(2, 2, dtype=torch.long))])
    out = m.evaluate(2)
    # class 0: inter 3 + 4, union (4 + 4 - 3) + 4 ; class 1: 3 / (6 + 4 - 3);
    # class 2: 2 / (2 + 4 - 2) (don't-care pixels predicted as 2 do not count)
    iou = [7 / 9 * 100, 3 / 7 * 100, 2 / 4 * 100]
    assert out['seg/IoU.a'] == pytest.approx(iou[0])
    assert out['seg/IoU.b'] == pytest.approx(iou[1])
    assert out['seg/IoU.c'] == pytest.approx(iou[2])
    assert np.isnan(out['seg/IoU.unused'])
    assert out['seg/mIoU'] == pytest.approx(np.mean(iou))
    assert out['seg/aAcc'] == pytest.approx((8 + 4) / (12 + 4) * 100)
    assert out['seg/real_mIoU'] == pytest.approx(100) and out['seg/real_aAcc'] == 100
    assert out['seg/real_IoU.a'] == 100 and np.isnan(out['seg/real_IoU.unused'])
    # batched by size: the two 4x4 images (fake, real) together, the 2x2 ones together
    assert sorted(seg.calls) == [(2, 3, 2, 2), (2, 3, 4, 4)]


def test_label_map_merges_and_ignores_labels():
    m = SegmentationMIoU(segmenter=CodedSegmenter(4), label_map={1: 0, 2: 0, 3: None},
                         num_classes=4, progress=False, class_names='wxyz')
    m.process(None, [sample(PRED, LABEL)])
    out = m.evaluate(1)
    # counted: the 8 pixels of labels 1, 2 (all segmenter class 0); 4 predicted 0, 4 predicted 1
    assert out['seg/IoU.w'] == pytest.approx(50) and out['seg/IoU.x'] == 0
    assert np.isnan(out['seg/IoU.y']) and np.isnan(out['seg/IoU.z'])
    assert out['seg/mIoU'] == pytest.approx(25) and out['seg/aAcc'] == pytest.approx(50)
    assert 'seg/real_mIoU' not in out


def test_first_of_k_samples_and_names_from_dataset_meta():
    m = SegmentationMIoU(segmenter=CodedSegmenter(3), progress=False)
    m.dataset_meta = dict(classes=('unlabeled', 'sky', 'grass', 'car'))  # num_classes from it
    s = sample(PRED.clamp(max=2), LABEL)
    s['fake_img'] = torch.stack([coded((LABEL - 1).clamp(min=0)), s['fake_img']])  # K = 2
    m.process(None, [s])
    out = m.evaluate(1)
    assert out['seg/mIoU'] == 100  # the first sample is the perfect one
    assert set(out) == {'seg/mIoU', 'seg/aAcc', 'seg/IoU.sky', 'seg/IoU.grass', 'seg/IoU.car'}


def test_build_label_lut_and_its_errors():
    np.testing.assert_array_equal(build_label_lut(4, 3), [-1, 0, 1, 2])
    np.testing.assert_array_equal(build_label_lut(4, 3, label_offset=2), [-1, -1, 0, 1])
    np.testing.assert_array_equal(build_label_lut(4, 5, label_map=[None, 4, -1, 0]),
                                  [-1, 4, -1, 0])
    np.testing.assert_array_equal(build_label_lut(4, 5, label_map={2: 1}), [-1, -1, 1, -1])
    with pytest.raises(ValueError, match=r'maps labels \[3\] to segmenter classes \[2\], but '
                                         r'the segmenter has 2 classes'):
        build_label_lut(4, 2)
    with pytest.raises(ValueError, match='label 0'):
        build_label_lut(4, 3, label_map=[0, 1, 2, None])
    with pytest.raises(ValueError, match='label_offset=0'):
        build_label_lut(4, 3, label_offset=0)
    with pytest.raises(ValueError, match='has 3 entries but the labels have 4'):
        build_label_lut(4, 3, label_map=[None, 0, 1])
    with pytest.raises(ValueError, match=r'keys \[7\] are not label ids'):
        build_label_lut(4, 3, label_map={7: 1})
    # checked at construction when the label space is known ...
    with pytest.raises(ValueError, match='segmenter has 2 classes'):
        SegmentationMIoU(segmenter=CodedSegmenter(2), num_classes=4, progress=False)
    # ... else at the first batch
    m = SegmentationMIoU(segmenter=lambda x: torch.zeros(x.shape[0], 2, *x.shape[2:]),
                         label_map=[None, 0, 1, 5], progress=False)
    with pytest.raises(ValueError, match=r'maps labels \[3\] to segmenter classes \[5\]'):
        m.process(None, [sample(PRED, LABEL)])
    with pytest.raises(ValueError, match=r'ids 0\.\.3 but num_classes=3'):
        SegmentationMIoU(segmenter=CodedSegmenter(3), num_classes=3,
                         progress=False).process(None, [sample(PRED, LABEL)])


def test_iou_areas_ignores_negative_targets():
    areas = iou_areas(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, -1]]), 3)
    np.testing.assert_array_equal(areas, [[1, 1, 0], [1, 2, 0], [2, 1, 0]])


def test_needs_a_segmenter_and_names_missing_files(tmp_path):
    with pytest.raises(ValueError, match='config=<mmseg config file> and checkpoint='):
        SegmentationMIoU()
    with pytest.raises(ValueError, match='either'):
        SegmentationMIoU(config='a.py', segmenter=CodedSegmenter(2))
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        SegmentationMIoU(config='configs/segmenters/fcn_synthscenes-target.py',
                         checkpoint=str(missing))


@pytest.mark.slow
def test_mmseg_segmenter_agrees_with_mmseg_pipeline_and_iou_metric(tmp_path):
    """Generated images written as PNG and run through mmseg's own LoadImageFromFile +
    PackSegInputs + test_step + IoUMetric give the same mIoU / aAcc / per-class IoU as the
    metric on the uint8 tensors (so channel order and preprocessing match mmseg's)."""
    from mmengine.registry import DefaultScope
    from PIL import Image
    classes = ['sky', 'grass', 'sand']
    cfg, ckpt = tiny_mmseg(tmp_path, 3, classes, bn_spread=0.5)
    m = METRICS.build(dict(type='SegmentationMIoU', config=str(cfg), checkpoint=str(ckpt),
                           num_classes=4, batch_size=2, progress=False))
    assert DefaultScope.get_current_instance().scope_name == 'catgen'  # guarded
    from catgen.pretrained import MMSegSegmenter
    assert isinstance(m._seg, MMSegSegmenter)                         # the shared wrapper,
    assert not m._seg.model.training                                  # frozen
    assert not any(p.requires_grad for p in m._seg.parameters())
    g = torch.Generator().manual_seed(0)
    samples = []
    for i in range(3):
        label = torch.randint(0, 4, (16, 16), generator=g)
        img = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g)
        img[:, label == 1] //= 4  # some structure the random net may pick up
        samples.append(dict(fake_img=img, gt_img=img, gt_label=label))
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp_path / f'{i}.png')
    m.process(None, samples[:2])
    m.process(None, samples[2:])
    out = m.evaluate(3)

    from mmcv.transforms import LoadImageFromFile
    from mmengine.structures import PixelData
    from mmseg.datasets.transforms import PackSegInputs
    from mmseg.evaluation import IoUMetric

    from catgen.utils.setup_env import init_mmseg_model
    net = init_mmseg_model(cfg, ckpt)
    ref = IoUMetric(iou_metrics=['mIoU'])
    ref.dataset_meta = dict(classes=classes)
    preds = []
    for i, s in enumerate(samples):
        r = PackSegInputs()(LoadImageFromFile()({'img_path': str(tmp_path / f'{i}.png')}))
        with torch.no_grad():
            pred = net.test_step({'inputs': [r['inputs']], 'data_samples': [r['data_samples']]})[0]
        gt = s['gt_label'] - 1
        gt[gt < 0] = 255
        pred.gt_sem_seg = PixelData(data=gt[None])
        preds.append(pred.pred_sem_seg.data[0])
        ref.process({}, [pred.to_dict()])
    assert len(torch.cat(preds).unique()) > 1  # the check means something
    expected = ref.compute_metrics(ref.results)  # percent, rounded to 2 decimals
    assert out['seg/mIoU'] == pytest.approx(expected['mIoU'], abs=0.006)
    assert out['seg/aAcc'] == pytest.approx(expected['aAcc'], abs=0.006)
    for k, name in enumerate(classes):
        per = iou_areas(torch.stack(preds).numpy(),
                        torch.stack([(s['gt_label'] - 1) for s in samples]).numpy(), 3)
        union = per[1, k] + per[2, k] - per[0, k]
        assert out[f'seg/IoU.{name}'] == pytest.approx(100 * per[0, k] / union)


@pytest.mark.slow
def test_in_a_runner_test_loop(tiny_oasis_cfg, tmp_path):
    """A catgen synthesizer evaluated by MMEngine's Runner with both metrics from config."""
    from mmengine.runner import Runner
    cfg, ckpt = tiny_mmseg(tmp_path, 20, bn_spread=0.5)
    tiny_oasis_cfg.test_evaluator = [
        dict(type='SegmentationMIoU', config=str(cfg), checkpoint=str(ckpt), segment_real=True,
             per_class=False, progress=False),
        dict(type='AppearanceDistance')]
    tiny_oasis_cfg.load_from = None
    runner = Runner.from_cfg(tiny_oasis_cfg)
    out = runner.test()
    assert {'seg/mIoU', 'seg/aAcc', 'seg/real_mIoU', 'seg/real_aAcc', 'appearance/mean',
            'appearance/mean_color', 'appearance/std_color', 'appearance/texture',
            'appearance/num_classes'} <= set(out)
    assert 0 <= out['seg/mIoU'] <= 100 and 0 <= out['seg/real_aAcc'] <= 100
    assert out['appearance/num_classes'] > 0 and out['appearance/mean'] > 0
