import math

import pytest
import torch
import torch.nn.functional as F

from catgen.models.losses.oasis_loss import (OASISLoss, oasis_class_weight_map,
                                             oasis_class_weights, oasis_n1_target)
from catgen.registry import MODELS


def onehot(label, c):
    return F.one_hot(label, c).permute(0, 3, 1, 2).float()


# 2x2 map, channel 0 = don't care: classes 1, 1, 2, 0
LABEL = torch.tensor([[[1, 1], [2, 0]]])
SEG = onehot(LABEL, 3)


def test_class_weights_by_hand():
    # pixels: class1 2, class2 1 (don't care excluded); 2 classes present; B*H*W = 4
    # w1 = 4 / (2 * 2) = 1, w2 = 4 / (1 * 2) = 2, don't care 0
    assert torch.equal(oasis_class_weights(SEG), torch.tensor([0., 1., 2.]))
    assert torch.equal(oasis_class_weight_map(SEG), torch.tensor([[[1., 1.], [2., 0.]]]))


def test_class_weights_batch_and_absent_classes():
    label = torch.tensor([[[1, 1], [1, 1]], [[3, 0], [0, 0]]])  # 2x2x2, class 2 absent
    w = oasis_class_weights(onehot(label, 4))
    # B*H*W = 8, present {1: 4 px, 3: 1 px} -> w1 = 8 / (4*2) = 1, w3 = 8 / (1*2) = 4
    assert torch.equal(w, torch.tensor([0., 1., 0., 4.]))


def test_dontcare_counts_as_class_when_asked():
    w = oasis_class_weights(SEG, contain_dontcare_label=False)
    # 3 classes present: w0 = 4/(1*3), w1 = 4/(2*3), w2 = 4/(1*3)
    assert torch.allclose(w, torch.tensor([4 / 3, 2 / 3, 4 / 3]))


def test_all_dontcare_gives_zero_weights():
    assert torch.equal(oasis_class_weights(onehot(torch.zeros(1, 2, 2, dtype=torch.long), 3)),
                       torch.zeros(3))


def test_targets():
    assert torch.equal(oasis_n1_target(SEG, True), torch.tensor([[[2, 2], [3, 1]]]))
    assert torch.equal(oasis_n1_target(SEG, False), torch.zeros(1, 2, 2, dtype=torch.long))


def _ce(logits, target):  # -log softmax(logits)[target] for one pixel's logits
    return -(logits[target] - torch.logsumexp(logits, 0)).item()


def test_loss_by_hand():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 2, 2)
    loss = MODELS.build(dict(type='OASISLoss'))
    # pixels in the order (0, 0), (0, 1), (1, 0), (1, 1)
    px = [logits[0, :, i, j] for i in range(2) for j in range(2)]
    real = (1 * _ce(px[0], 2) + 1 * _ce(px[1], 2) + 2 * _ce(px[2], 3) + 0 * _ce(px[3], 1)) / 4
    fake = sum(_ce(p, 0) for p in px) / 4
    assert loss(logits, SEG, for_real=True).item() == pytest.approx(real, rel=1e-5)
    assert loss(logits, SEG, for_real=False).item() == pytest.approx(fake, rel=1e-5)
    unbalanced = OASISLoss(class_balancing=False)(logits, SEG, for_real=True)
    assert unbalanced.item() == pytest.approx(sum(_ce(p, t) for p, t in zip(px, [2, 2, 3, 1])) / 4,
                                              rel=1e-5)
    assert OASISLoss(loss_weight=3.)(logits, SEG, True).item() == pytest.approx(3 * real, rel=1e-5)


def test_dontcare_pixels_get_no_gradient():
    logits = torch.zeros(1, 4, 2, 2, requires_grad=True)
    OASISLoss()(logits, SEG, for_real=True).backward()
    assert logits.grad[0, :, 1, 1].abs().sum() == 0  # the don't-care pixel
    assert logits.grad[0, :, 0, 0].abs().sum() > 0
    # with uniform logits the real loss is log(4) * mean weight = log(4) * 4/4
    assert OASISLoss()(torch.zeros(1, 4, 2, 2), SEG, True).item() == pytest.approx(math.log(4))


def _official_like(logits, seg, for_real):
    """An independent restatement of the official algorithm (inf for absent classes included)."""
    occ = seg.sum(dim=(0, 2, 3))
    occ[0] = 0
    n = (occ > 0).sum()
    coef = torch.reciprocal(occ) * seg.numel() / (n * seg.shape[1])
    coef[0] = 0
    idx = seg.argmax(1)
    target = idx + 1 if for_real else torch.zeros_like(idx)
    ce = F.cross_entropy(logits, target, reduction='none')
    return (ce * coef[idx]).mean() if for_real else ce.mean()


def test_matches_official_algorithm_on_random_batch():
    torch.manual_seed(1)
    seg = onehot(torch.randint(0, 7, (3, 8, 8)), 7)
    seg[:, 4] = 0  # an absent class
    seg[:, 0] += (seg.sum(1) == 0).float()
    logits = torch.randn(3, 8, 8, 8)
    for real in (True, False):
        assert torch.allclose(OASISLoss()(logits, seg, real), _official_like(logits, seg, real))


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r'\[B, C\+1, H, W\]'):
        OASISLoss()(torch.zeros(1, 3, 2, 2), SEG, True)


# ---------------------------------------------------------------- synced weights under DDP
def _ddp_batch():
    """A global batch of 4 whose halves hold different classes (class 3 only in the 2nd)."""
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 3, (4, 6, 6), generator=g)
    label[2:, :2] = 3
    logits = torch.randn(4, 5, 6, 6, generator=g)
    return onehot(label, 4), logits


def _synced_rank(rank, world):
    seg, logits = _ddp_batch()
    sl = slice(rank * 2, rank * 2 + 2)
    logits = logits[sl].clone().requires_grad_(True)
    loss = OASISLoss()(logits, seg[sl], for_real=True)
    loss.backward()
    return dict(weights=oasis_class_weights(seg[sl], sync=True),
                unsynced=oasis_class_weights(seg[sl]),
                map=oasis_class_weight_map(seg[sl], sync=True),
                loss=loss.detach(), grad=logits.grad,
                off=OASISLoss(sync_class_weights=False)(logits, seg[sl], for_real=True).detach())


def test_synced_class_weights_are_the_global_batch_weights(tmp_path):
    import os.path as osp
    import sys
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from test_sync_batch_norm import run_in_processes

    results = run_in_processes(_synced_rank, tmp_path)
    seg, logits = _ddp_batch()
    global_w = oasis_class_weights(seg)
    logits = logits.clone().requires_grad_(True)
    global_loss = OASISLoss()(logits, seg, for_real=True)
    global_loss.backward()
    for rank, res in enumerate(results):
        sl = slice(rank * 2, rank * 2 + 2)
        torch.testing.assert_close(res['weights'], global_w)
        torch.testing.assert_close(res['map'], oasis_class_weight_map(seg)[sl])
        assert not torch.allclose(res['unsynced'], global_w)  # the halves differ on their own
        # DDP averages the ranks' gradients: the mean equals the global batch's gradient
        torch.testing.assert_close(res['grad'] / 2, logits.grad[sl])
    torch.testing.assert_close((results[0]['loss'] + results[1]['loss']) / 2, global_loss.detach())
    off = (results[0]['off'] + results[1]['off']) / 2  # sync_class_weights=False: per-rank weights
    assert abs(float(off) - float(global_loss.detach())) > 1e-3


def test_sync_is_a_no_op_with_one_process():
    seg, logits = _ddp_batch()
    assert torch.equal(oasis_class_weights(seg, sync=True), oasis_class_weights(seg))
    assert torch.equal(OASISLoss(sync_class_weights=True)(logits, seg, True),
                       OASISLoss(sync_class_weights=False)(logits, seg, True))
