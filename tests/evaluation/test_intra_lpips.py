"""IntraLPIPS: generated images clustered around their nearest training image by LPIPS."""
import math

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from PIL import Image

from catgen.evaluation.lpips_model import LPIPSModel
from catgen.evaluation.metrics import IntraLPIPS
from catgen.evaluation.metrics.intra_lpips import intra_lpips
from catgen.registry import METRICS
from catgen.structures import SISDataSample

SIZE = 32


@pytest.fixture(scope='module')
def lpips_model(alex_file):
    return LPIPSModel('alex', backbone_path=alex_file, device='cpu', batch_size=4)


def training_images(n=3, seed=0):
    """``n`` unrelated random images, uint8 [n, 3, SIZE, SIZE]."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)


def near(img, seed, amount=12):
    """``img`` with a little seeded noise: much closer to ``img`` than to any other image."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randint(-amount, amount + 1, img.shape, generator=g)
    return (img.long() + noise).clamp(0, 255).to(torch.uint8)


#: the cluster (training image) of each generated image, in generation order.
CLUSTER_OF = [1, 0, 0, 2, 1, 0, 1, 0]


def generated(train):
    return torch.stack([near(train[c], seed=100 + i) for i, c in enumerate(CLUSTER_OF)])


def direct_mean_pairwise(model, imgs):
    """Mean LPIPS over all pairs of ``imgs`` by lpips' own forward, pair by pair."""
    x = imgs.float() / 127.5 - 1
    values = []
    with torch.no_grad():
        for i in range(len(x)):
            for j in range(i + 1, len(x)):
                values.append(float(model.lpips(x[i:i + 1], x[j:j + 1])))
    return float(np.mean(values))


def test_hand_built_clusters_and_value(lpips_model):
    train = training_images()
    fakes = generated(train)
    out = intra_lpips(lpips_model, fakes, lpips_model.embed(train))
    assert out['assignment'].tolist() == CLUSTER_OF
    assert out['cluster_sizes'].tolist() == [4, 3, 1]
    assert sorted(out['cluster_lpips']) == [0, 1]  # cluster 2 has one member: left out
    members = np.asarray(CLUSTER_OF)
    expected = {c: direct_mean_pairwise(lpips_model, fakes[members == c]) for c in (0, 1)}
    for c in (0, 1):
        assert out['cluster_lpips'][c] == pytest.approx(expected[c], rel=1e-5)
    assert out['intra_lpips'] == pytest.approx((expected[0] + expected[1]) / 2, rel=1e-5)
    assert out['intra_lpips'] > 0
    # without the embedding cache (members embedded again in other batches): the same value
    again = intra_lpips(lpips_model, fakes, lpips_model.embed(train), cache_mb=0)
    assert again['intra_lpips'] == pytest.approx(out['intra_lpips'], rel=1e-9)
    assert again['assignment'].tolist() == CLUSTER_OF
    # a distance to the nearest training image is LPIPS(fake, train[c]) itself
    with torch.no_grad():
        first = float(lpips_model.lpips(fakes[:1].float() / 127.5 - 1,
                                        train[1:2].float() / 127.5 - 1))
    assert out['nearest_lpips'][0] == pytest.approx(first, rel=1e-5)


class PointLPIPS:
    """A fake LPIPS: an image's embedding is its mean pixel value, so LPIPS(x, y) is the
    squared difference of the means (deterministic, computable by hand)."""

    batch_size = 7

    def embed(self, imgs, progress=None):
        if progress is not None:
            progress.update(len(imgs))
        return imgs.double().mean(dim=(1, 2, 3))[:, None]


def point_images(values):
    """uint8 [N, 3, 2, 2] images of constant value ``values[i]``."""
    return torch.tensor(values, dtype=torch.uint8)[:, None, None, None].expand(-1, 3, 2, 2)


#: 60 images near training point 0 (values 0..39), 3 near 100, 1 near 200, interleaved.
POINT_TRAIN = torch.tensor([[0.0], [100.0], [200.0]], dtype=torch.float64)
POINT_VALUES = [i % 40 for i in range(60)] + [100, 110, 95, 200]
POINT_ORDER = np.random.default_rng(123).permutation(len(POINT_VALUES))
POINT_VALUES = [POINT_VALUES[i] for i in POINT_ORDER]


def hand_mean_pairwise(values):
    pairs = [(values[i] - values[j]) ** 2 for i in range(len(values))
             for j in range(i + 1, len(values))]
    return sum(pairs) / len(pairs)


def test_members_are_a_seeded_random_subset_and_the_value_is_by_hand():
    fakes = point_images(POINT_VALUES)
    out = intra_lpips(PointLPIPS(), fakes, POINT_TRAIN, max_per_cluster=50, seed=0)
    members = {c: np.flatnonzero(out['assignment'] == c) for c in range(3)}
    assert [len(m) for m in members.values()] == [60, 3, 1]
    assert out['cluster_sizes'].tolist() == [60, 3, 1]
    kept = out['kept']
    assert sorted(kept) == [0, 1]  # the singleton cluster does not count
    assert len(kept[0]) == 50 and set(kept[0]) <= set(members[0])  # exactly 50 of 60
    assert kept[0].tolist() != members[0][:50].tolist()  # not the first 50
    assert kept[1].tolist() == members[1].tolist()  # a small cluster keeps all
    # value: mean pairwise squared difference within the kept members, then over clusters
    by_hand = {c: hand_mean_pairwise([POINT_VALUES[i] for i in kept[c]]) for c in (0, 1)}
    assert out['cluster_lpips'][0] == pytest.approx(by_hand[0], rel=1e-12)
    assert out['cluster_lpips'][1] == pytest.approx(by_hand[1], rel=1e-12)
    assert by_hand[1] == pytest.approx(((110 - 100) ** 2 + 5 ** 2 + 15 ** 2) / 3)
    assert out['intra_lpips'] == pytest.approx((by_hand[0] + by_hand[1]) / 2, rel=1e-12)
    # same seed: same members (with or without the embedding cache); another seed: others
    again = intra_lpips(PointLPIPS(), fakes, POINT_TRAIN, seed=0, cache_mb=0)
    assert again['kept'][0].tolist() == kept[0].tolist()
    assert again['intra_lpips'] == pytest.approx(out['intra_lpips'], rel=1e-12)
    partial = intra_lpips(PointLPIPS(), fakes, POINT_TRAIN, seed=0, cache_mb=10 * 8 / 2 ** 20)
    assert partial['intra_lpips'] == pytest.approx(out['intra_lpips'], rel=1e-12)  # 10 cached
    other = intra_lpips(PointLPIPS(), fakes, POINT_TRAIN, seed=1)['kept'][0]
    assert len(other) == 50 and other.tolist() != kept[0].tolist()
    # over seeds every member is sometimes kept and sometimes left out (a uniform choice)
    counts = np.zeros(len(fakes))
    for seed in range(30):
        counts[intra_lpips(PointLPIPS(), fakes, POINT_TRAIN, seed=seed)['kept'][0]] += 1
    assert counts.sum() == 30 * 50
    assert (counts[members[0]] > 0).all() and (counts[members[0]] < 30).all()


def test_a_small_cap_keeps_random_pairs(lpips_model):
    train = training_images()
    fakes = generated(train)
    out = intra_lpips(lpips_model, fakes, lpips_model.embed(train), max_per_cluster=2, seed=0)
    assert out['cluster_sizes'].tolist() == [4, 3, 1]  # sizes before the cap
    members = np.asarray(CLUSTER_OF)
    for c in (0, 1):
        assert len(out['kept'][c]) == 2 and (members[out['kept'][c]] == c).all()
        expected = direct_mean_pairwise(lpips_model, fakes[out['kept'][c]])
        assert out['cluster_lpips'][c] == pytest.approx(expected, rel=1e-5)
    assert out['intra_lpips'] == pytest.approx(np.mean(list(out['cluster_lpips'].values())))
    subsets = {tuple(intra_lpips(lpips_model, fakes, lpips_model.embed(train),
                                 max_per_cluster=2, seed=s)['kept'][0]) for s in range(8)}
    assert len(subsets) > 1  # the seed decides which pair of cluster 0 is kept


def test_copies_of_training_images_score_zero_and_singletons_give_nan(lpips_model):
    train = training_images()
    copies = train[[0, 0, 2, 2, 2]]
    out = intra_lpips(lpips_model, copies, lpips_model.embed(train))
    # 0 up to float rounding: the same image embedded in another batch may differ by ~1e-14
    assert out['intra_lpips'] == pytest.approx(0, abs=1e-9)
    assert sorted(out['cluster_lpips']) == [0, 2]
    assert out['nearest_lpips'] == pytest.approx(np.zeros(5), abs=1e-9)
    alone = intra_lpips(lpips_model, train[[0, 1]], lpips_model.embed(train))
    assert math.isnan(alone['intra_lpips']) and alone['cluster_lpips'] == {}


def write_pngs(folder, imgs, scale=1):
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(imgs):
        arr = img.permute(1, 2, 0).numpy()
        if scale > 1:
            arr = np.kron(arr, np.ones((scale, scale, 1), dtype=np.uint8))
        Image.fromarray(arr).save(folder / f'{i:03d}.png')
    return folder


def test_metric_from_predict_outputs_and_a_training_folder(lpips_model, alex_file, tmp_path):
    train = training_images()
    fakes = generated(train)  # 8 images = 4 maps x K=2, map i holds fakes[2i], fakes[2i + 1]
    folder = write_pngs(tmp_path / 'train', train)
    metric = METRICS.build(dict(type='IntraLPIPS', train_dir=str(folder), net='alex',
                                backbone_path=str(alex_file), device='cpu', progress=False))
    samples = [dict(fake_img=fakes[2 * i:2 * i + 2], sample_idx=i) for i in range(4)]
    metric.process(None, samples[2:])  # arrival order differs from sample_idx order
    metric.process(None, samples[:2])
    out = metric.compute_metrics(metric.results)
    expected = intra_lpips(lpips_model, fakes, lpips_model.embed(train))['intra_lpips']
    assert out['intra_lpips'] == pytest.approx(expected, rel=1e-6)
    assert out['intra_lpips_clusters'] == 2 and out['intra_lpips_images'] == 8
    # max_images: the first 4 by index are clusters [1, 0, 0, 2] -> only cluster 0 counts
    capped = IntraLPIPS(train_dir=str(folder), net='alex', backbone_path=alex_file,
                        device='cpu', progress=False, max_images=4)
    capped.process(None, samples)
    out = capped.compute_metrics(capped.results)
    assert out['intra_lpips_clusters'] == 1 and out['intra_lpips_images'] == 4
    assert out['intra_lpips'] == pytest.approx(direct_mean_pairwise(lpips_model, fakes[1:3]),
                                               rel=1e-5)


def test_larger_training_images_are_resized_to_the_generated_size(alex_file, tmp_path):
    train = training_images()
    folder = write_pngs(tmp_path / 'train', train, scale=2)  # 64x64 on disk, 32x32 generated
    metric = IntraLPIPS(train_dir=str(folder), net='alex', backbone_path=alex_file,
                        device='cpu', progress=False)
    fakes = generated(train)
    evaluator = Evaluator(metric)
    evaluator.process([SISDataSample(fake_img=fakes[i], metainfo=dict(sample_idx=i))
                       for i in range(len(fakes))])
    out = evaluator.evaluate(len(fakes))
    assert set(out) == {'diversity/intra_lpips', 'diversity/intra_lpips_clusters',
                        'diversity/intra_lpips_images'}
    assert out['diversity/intra_lpips_clusters'] == 2 and out['diversity/intra_lpips_images'] == 8
    assert (SIZE, SIZE) in metric._train_emb  # embedded at the generated size


def test_resize_compares_generated_and_training_images_at_that_size(lpips_model, alex_file,
                                                                     tmp_path):
    """resize=64 (the official protocol uses 256): generated and training images are resized
    (bilinear, antialiased) before LPIPS; the same as resizing them by hand first."""
    import torch.nn.functional as F
    train = training_images()
    fakes = generated(train)
    folder = write_pngs(tmp_path / 'train', train)
    metric = IntraLPIPS(train_dir=str(folder), net='alex', backbone_path=alex_file,
                        device='cpu', progress=False, resize=64, max_per_cluster=2, seed=3)
    metric.process(None, [dict(fake_img=fakes[i], sample_idx=i) for i in range(len(fakes))])
    out = metric.compute_metrics(metric.results)
    assert (64, 64) in metric._train_emb and (SIZE, SIZE) not in metric._train_emb

    def up(imgs):
        x = imgs.float() / 127.5 - 1
        return F.interpolate(x, size=(64, 64), mode='bilinear', align_corners=False,
                             antialias=True).clamp(-1, 1)

    by_hand = intra_lpips(lpips_model, up(fakes), lpips_model.embed(up(train)),
                          max_per_cluster=2, seed=3)
    assert out['intra_lpips'] == pytest.approx(by_hand['intra_lpips'], rel=1e-5)
    assert out['intra_lpips_clusters'] == len(by_hand['cluster_lpips']) >= 1
    native = intra_lpips(lpips_model, fakes, lpips_model.embed(train), max_per_cluster=2,
                         seed=3)
    assert out['intra_lpips'] != pytest.approx(native['intra_lpips'], rel=1e-3)


def test_training_images_from_a_dataset_config(tiny_synthscenes, alex_file):
    cfg = dict(type='SynthScenesDataset', data_root=str(tiny_synthscenes), domain='target',
               split='train', num_shots=5)
    metric = IntraLPIPS(train_dataset=cfg, net='alex', backbone_path=alex_file, device='cpu',
                        progress=False)
    assert len(metric.train_paths) == 5
    assert all(p.endswith('.png') and '/target/images/train/' in p for p in metric.train_paths)
    emb = metric.train_embeddings((64, 64))
    assert emb.shape[0] == 5 and torch.isfinite(emb).all()


def test_bad_configurations_are_explained(alex_file, tmp_path):
    with pytest.raises(ValueError, match='exactly one of train_dataset'):
        IntraLPIPS(net='alex', backbone_path=alex_file)
    with pytest.raises(ValueError, match='exactly one of train_dataset'):
        IntraLPIPS(train_dir=str(tmp_path), train_dataset=dict(type='SynthScenesDataset'),
                   net='alex', backbone_path=alex_file)
    with pytest.raises(FileNotFoundError, match='holds no image files'):
        IntraLPIPS(train_dir=str(tmp_path), net='alex', backbone_path=alex_file)
    with pytest.raises(FileNotFoundError, match='not a folder'):
        IntraLPIPS(train_dir=str(tmp_path / 'none'), net='alex', backbone_path=alex_file)
    folder = write_pngs(tmp_path / 'train', training_images(2))
    with pytest.raises(FileNotFoundError, match='vgg16-397923af.pth'):
        IntraLPIPS(train_dir=str(folder), backbone_path=tmp_path / 'missing.pth')
    with pytest.raises(ValueError, match='max_per_cluster'):
        IntraLPIPS(train_dir=str(folder), net='alex', backbone_path=alex_file,
                   max_per_cluster=1)
    metric = IntraLPIPS(train_dir=str(folder), net='alex', backbone_path=alex_file,
                        device='cpu', progress=False)
    metric.process(None, [dict(fake_img=training_images(2)), dict(fake_img=torch.zeros(
        2, 3, 40, 40, dtype=torch.uint8))])
    with pytest.raises(ValueError, match='several sizes'):
        metric.compute_metrics(metric.results)


@pytest.mark.slow
def test_both_lpips_metrics_in_a_runner_test_loop(tiny_oasis_cfg, alex_file):
    """A tiny OASIS with num_eval_samples=2 evaluated by MMEngine's Runner, metrics from config;
    the training images come from a SynthScenesDataset config."""
    from mmengine.runner import Runner
    cfg = tiny_oasis_cfg
    cfg.model.num_eval_samples = 2
    train = dict(type='SynthScenesDataset', data_root=cfg.train_dataloader.dataset.data_root,
                 domain='source', split='train', num_shots=4)
    cfg.test_evaluator = [
        dict(type='LPIPSDiversity', backbone_path=str(alex_file), device='cpu'),
        dict(type='IntraLPIPS', train_dataset=train, net='alex', backbone_path=str(alex_file),
             device='cpu', progress=False)]
    cfg.load_from = None
    out = Runner.from_cfg(cfg).test()
    assert out['diversity/lpips_diversity_maps'] == 8  # the 8 source val maps
    assert out['diversity/lpips_diversity'] > 0
    assert out['diversity/intra_lpips_images'] == 16  # 8 maps x K=2
    assert 1 <= out['diversity/intra_lpips_clusters'] <= 4
    assert out['diversity/intra_lpips'] > 0


def test_progress_bars_are_printed(lpips_model, capsys):
    train = training_images()
    intra_lpips(lpips_model, generated(train), lpips_model.embed(train), cache_mb=0,
                progress=True)
    printed = capsys.readouterr().out
    assert 'assigning generated images' in printed and '8/8' in printed
    assert 'embedding 7 images again' in printed and '7/7' in printed
