import numpy as np
import pytest
import torch

from catgen.evaluation.metrics import AppearanceDistance
from catgen.evaluation.metrics.appearance_distance import class_pixel_stats, stats_features
from catgen.registry import METRICS


def flat(color, h=8, w=8):
    return torch.tensor(color, dtype=torch.uint8)[:, None, None].expand(3, h, w).clone()


def run(metric, samples):
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def two_class_label(h=8, w=8):
    label = torch.ones(h, w, dtype=torch.long)
    label[:, w // 2:] = 2
    return label


def test_identical_images_give_zero():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 4, (16, 16), generator=g)
    img = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g)
    out = run(AppearanceDistance(num_classes=4), [dict(fake_img=img, gt_img=img, gt_label=label)])
    assert out['num_classes'] == 3
    for key in ('mean', 'mean_color', 'std_color', 'texture'):
        assert out[key] == pytest.approx(0, abs=1e-9), key


def test_colour_shift_gives_its_norm_in_the_mean_part_only():
    g = torch.Generator().manual_seed(1)
    label = two_class_label(16, 16)
    real = torch.randint(20, 200, (3, 16, 16), dtype=torch.uint8, generator=g)
    fake = real + torch.tensor([3, 4, 0], dtype=torch.uint8)[:, None, None]  # |shift| = 5
    m = AppearanceDistance(num_classes=3, scales=dict(mean_color=10.0))
    out = run(m, [dict(fake_img=fake, gt_img=real, gt_label=label)])
    assert out['mean_color'] == pytest.approx(5.0)
    assert out['std_color'] == pytest.approx(0, abs=1e-9)
    assert out['texture'] == pytest.approx(0, abs=1e-9)
    # normalised: (5 / 10 + 0 + 0) / 3 parts, for each of the 2 classes
    assert out['mean'] == pytest.approx(0.5 / 3)


def test_flat_vs_striped_region_has_texture_and_spread():
    label = torch.ones(8, 8, dtype=torch.long)
    fake = flat((100, 100, 100))
    real = fake.clone()
    real[:, :, ::2] = 140  # vertical stripes: every horizontal neighbour differs by 40
    out = run(AppearanceDistance(num_classes=2, scales=dict(mean_color=1, std_color=1,
                                                            texture=1)),
              [dict(fake_img=fake, gt_img=real, gt_label=label)])
    # real texture: horizontal |dx| = 40 per channel, vertical 0 -> RMS over directions of the
    # 3-channel norms = sqrt((3 * 40^2 + 0) / 2)
    assert out['texture'] == pytest.approx(np.sqrt(3 * 40 ** 2 / 2))
    assert out['mean_color'] == pytest.approx(np.sqrt(3) * 20)  # mean 120 vs 100
    assert out['std_color'] == pytest.approx(np.sqrt(3) * 20)  # std 20 vs 0


def test_texture_counts_only_pairs_inside_the_class():
    """Two flat classes side by side: the colour step at their border is no texture."""
    label = two_class_label()
    img = flat((10, 10, 10))
    img[:, :, 4:] = 250
    ids, stats = class_pixel_stats(img.numpy(), label.numpy(), 3)
    assert ids.tolist() == [1, 2]
    feats = stats_features(stats)
    np.testing.assert_array_equal(feats['texture'], 0)
    # 8 rows x 3 horizontal pairs, 7 x 4 vertical pairs per class
    np.testing.assert_array_equal(stats[:, 7], [24, 24])
    np.testing.assert_array_equal(stats[:, 11], [28, 28])
    np.testing.assert_allclose(feats['mean'], [[10] * 3, [250] * 3])


def test_dontcare_skipped_and_classes_missing_in_one_set_not_averaged():
    label = two_class_label()
    label[0, 0] = 0
    fake = flat((0, 0, 0))
    fake[:, 0, 0] = 255  # don't care pixel: must not count
    real = flat((0, 0, 0))
    m = AppearanceDistance(num_classes=4, per_class=True)
    m.dataset_meta = dict(classes=('unlabeled', 'sky', 'grass', 'car'))
    with pytest.warns(UserWarning, match='scale cannot be computed'):  # all real pixels alike
        out = run(m, [dict(fake_img=fake, gt_img=real, gt_label=label)])
    assert out['num_classes'] == 2 and out['mean_color'] == 0
    assert out['dist.sky'] == 0 and out['dist.grass'] == 0 and np.isnan(out['dist.car'])


def test_scales_are_the_mean_inter_class_distance_of_real_images():
    label = torch.ones(8, 8, dtype=torch.long)
    label[:, 4:] = 2
    label[4:, :] = 3
    real = flat((0, 0, 0))
    real[:, :, 4:] = 30
    real[:, 4:, :] = 60
    fake = real.clone()
    fake[:, label == 1] = 10  # class 1 off by (10, 10, 10)
    m = AppearanceDistance(num_classes=4)
    m.process(None, [dict(fake_img=fake, gt_img=real, gt_label=label)])
    real_feats = stats_features(m._summed(m.results)[1])
    # flat classes: std and texture spreads are 0 -> those scales fall back to 1 with a warning
    with pytest.warns(UserWarning, match='scale cannot be computed'):
        scales = m.scales_from_real(real_feats)
    d = np.sqrt(3) * np.array([30, 60, 30])  # |0-30|, |0-60|, |30-60| per channel
    assert scales['mean_color'] == pytest.approx(d.mean())
    assert scales['std_color'] == 1 and scales['texture'] == 1
    with pytest.warns(UserWarning):
        out = m.compute_metrics(m.results)
    assert out['mean_color'] == pytest.approx(np.sqrt(3) * 10 / 3)
    # class 1: (d_mean / scale + 0 + 0) / 3; classes 2, 3: 0
    assert out['mean'] == pytest.approx(np.sqrt(3) * 10 / d.mean() / 3 / 3)


def test_k_samples_use_the_first_and_sums_over_images():
    label = torch.ones(4, 4, dtype=torch.long)
    real = flat((50, 50, 50), 4, 4)
    fakes = torch.stack([flat((60, 50, 50), 4, 4), flat((0, 0, 0), 4, 4)])  # [K=2, 3, H, W]
    m = AppearanceDistance(num_classes=2, scales=dict(mean_color=1, std_color=1, texture=1))
    m.process(None, [dict(fake_img=fakes, gt_img=real, gt_label=label),
                     dict(fake_img=real, gt_img=real, gt_label=label)])
    out = m.compute_metrics(m.results)
    # pooled over both images: fake mean R = 55, std R = 5
    assert out['mean_color'] == pytest.approx(5) and out['std_color'] == pytest.approx(5)


def test_registered_reads_num_classes_from_dataset_meta_and_errors():
    m = METRICS.build(dict(type='AppearanceDistance'))
    assert isinstance(m, AppearanceDistance) and m.prefix == 'appearance'
    img = flat((1, 2, 3), 4, 4)
    sample = dict(fake_img=img, gt_img=img, gt_label=torch.ones(4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='num_classes'):
        m.process(None, [sample])
    m.dataset_meta = dict(classes=('unlabeled', 'a'))
    m.process(None, [sample])
    with pytest.warns(UserWarning, match='fewer than two classes'):
        assert m.evaluate(1)['appearance/num_classes'] == 1
    with pytest.raises(ValueError, match=r'class ids 3\.\.3 but num_classes=2'):
        AppearanceDistance(num_classes=2).process(None, [dict(sample, gt_label=torch.full(
            (4, 4), 3))])
    with pytest.raises(ValueError, match=r'expected \[3, H, W\]'):
        AppearanceDistance(num_classes=2).process(None, [dict(sample, fake_img=img[:, :2])])
    with pytest.raises(KeyError, match="no 'gt_img'"):
        AppearanceDistance(num_classes=2).process(None, [dict(fake_img=img,
                                                              gt_label=sample['gt_label'])])
    with pytest.raises(ValueError, match='scales'):
        AppearanceDistance(scales=dict(colour=3))
