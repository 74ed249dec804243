import numpy as np
import pytest
import torch

from catgen.evaluation.metrics import ClassColorDistance


def sample(fake_color, real_color, label):
    h, w = label.shape
    fake = torch.tensor(fake_color, dtype=torch.uint8)[:, None, None].expand(3, h, w).clone()
    real = torch.tensor(real_color, dtype=torch.uint8)[:, None, None].expand(3, h, w).clone()
    return dict(fake_img=fake, gt_img=real, gt_label=label, img_path=f'/x/{h}.png')


def test_distance_of_constant_colours_by_hand(tmp_path):
    metric = ClassColorDistance(num_classes=3, save_dir=str(tmp_path))
    label = torch.ones(4, 4, dtype=torch.long)
    label[:, 2:] = 2
    label[0, 0] = 0  # don't care: skipped
    metric.process(None, [sample((10, 20, 30), (13, 24, 30), label)])
    out = metric.compute_metrics(metric.results)
    assert np.isclose(out['mean_dist'], 5.0) and out['std_dist'] == 0 and out['num_classes'] == 2
    assert (tmp_path / '4.png').is_file()


def test_identical_images_give_zero():
    metric = ClassColorDistance(num_classes=4)
    label = torch.randint(1, 4, (8, 8))
    img = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    metric.process(None, [dict(fake_img=img, gt_img=img, gt_label=label)])
    out = metric.compute_metrics(metric.results)
    assert out['mean_dist'] == 0 and abs(out['std_dist']) < 1e-9


def test_agrees_with_appearance_distance_colour_parts_and_saves_first_of_k(tmp_path):
    from PIL import Image

    from catgen.evaluation.metrics import AppearanceDistance
    g = torch.Generator().manual_seed(0)
    samples = []
    for i in range(3):
        label = torch.randint(0, 5, (8, 8), generator=g)
        fake = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8, generator=g)  # K = 2
        real = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=g)
        samples.append(dict(fake_img=fake, gt_img=real, gt_label=label, img_path=f'/d/{i}.png'))
    color = ClassColorDistance(num_classes=5, save_dir=str(tmp_path))
    color.process(None, samples)
    out = color.evaluate(3)
    app = AppearanceDistance(num_classes=5)
    app.process(None, samples)
    ref = app.evaluate(3)
    assert out['color/num_classes'] == ref['appearance/num_classes'] == 4
    assert np.isclose(out['color/mean_dist'], ref['appearance/mean_color'])
    assert np.isclose(out['color/std_dist'], ref['appearance/std_color'])
    saved = np.asarray(Image.open(tmp_path / '2.png'))
    np.testing.assert_array_equal(saved, samples[2]['fake_img'][0].permute(1, 2, 0).numpy())


def test_label_outside_num_classes_is_an_error():
    img = torch.zeros(3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match='num_classes=3'):
        ClassColorDistance(num_classes=3).process(
            None, [dict(fake_img=img, gt_img=img, gt_label=torch.full((4, 4), 5))])
