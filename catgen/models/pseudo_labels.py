"""Pseudo label maps from a generator's features and a few labelled images (Fewshot-SMIS).

Endo & Kanamori (CVPR 2021) label random samples of an unconditional generator by comparing
their features with the features of a few labelled images (inverted into the generator):

- :func:`class_prototypes` (dense mode): per class, the masked average of the features over
  each labelled image that contains the class (labels downsampled, nearest, to the feature
  size), averaged over those images, then L2-normalised;
- :func:`dense_pseudo_labels`: every pixel takes the class whose prototype has the highest
  cosine with its feature;
- :func:`support_features` + :func:`sparse_pseudo_labels` (sparse mode): every labelled pixel
  keeps its own normalised feature; each claims its ``top_k`` (3) most similar pixels of the
  sample whose cosine exceeds ``threshold`` (0.5); a pixel claimed more than once takes the
  class of its highest cosine; unclaimed pixels are unlabelled (``ignore_index``).

Pseudo labels are computed at the feature resolution and upsampled (nearest) to the image size.
A class absent from every labelled image has no prototype and is never predicted: the method
can only name what the shots show.
"""
import torch
import torch.nn.functional as F


def _normalise(feats):
    """Tensor[B, F, H, W] -> unit vectors along F (zero vectors stay zero)."""
    return F.normalize(feats.float(), dim=1, eps=1e-8)


def _labels_at(labels, size):
    """int Tensor[B, H, W] -> Tensor[B, h, w] (nearest)."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode='nearest')[:, 0].long()


def class_prototypes(feats, labels, num_classes, ignore_index=255):
    """Dense-mode class prototypes.

    Args:
        feats: Tensor[N, F, h, w] features of the N labelled (inverted) images.
        labels: int Tensor[N, H, W] their label maps (``ignore_index`` pixels are skipped).
        num_classes: label ids are ``0 .. num_classes - 1``.
        ignore_index: the unlabelled id.

    Returns:
        ``(prototypes Tensor[num_classes, F] L2-normalised (zero rows for absent classes),
        present bool Tensor[num_classes])``.
    """
    labels = _labels_at(labels, feats.shape[-2:])
    feats = feats.float()
    n, f = feats.shape[:2]
    sums = torch.zeros(n, num_classes, f, dtype=feats.dtype, device=feats.device)
    counts = torch.zeros(n, num_classes, dtype=feats.dtype, device=feats.device)
    flat = feats.flatten(2).transpose(1, 2)  # [N, hw, F]
    lab = labels.flatten(1)
    valid = lab != ignore_index
    if bool(((lab < 0) | (lab >= num_classes))[valid].any()):
        raise ValueError(f'class_prototypes: label ids must be in [0, {num_classes}) or '
                         f'{ignore_index}, got {sorted(set(lab[valid].tolist()))[:10]}')
    idx = torch.where(valid, lab, torch.zeros_like(lab))
    sums.scatter_add_(1, idx[..., None].expand(-1, -1, f), flat * valid[..., None])
    counts.scatter_add_(1, idx, valid.to(feats.dtype))
    in_image = counts > 0
    per_image = sums / counts.clamp(min=1)[..., None]  # the mean feature per image and class
    images = in_image.sum(0)
    mean = (per_image * in_image[..., None]).sum(0) / images.clamp(min=1)[:, None].to(feats.dtype)
    present = images > 0
    return F.normalize(mean, dim=1, eps=1e-8) * present[:, None], present


def dense_pseudo_labels(feats, prototypes, present=None, size=None):
    """Every pixel -> the class of highest cosine with its feature.

    Args:
        feats: Tensor[B, F, h, w] features of the samples.
        prototypes: Tensor[C, F] from :func:`class_prototypes`.
        present: bool Tensor[C]; classes without a prototype are never chosen.
        size: (H, W) of the output (nearest upsampling); None keeps (h, w).

    Returns:
        int64 Tensor[B, H, W].
    """
    cos = torch.einsum('bfhw,cf->bchw', _normalise(feats), prototypes.float())
    if present is not None:
        cos = cos.masked_fill(~present.to(cos.device)[None, :, None, None], float('-inf'))
    labels = cos.argmax(1)
    return labels if size is None else _labels_at(labels, size)


def support_features(feats, labels, ignore_index=255):
    """Sparse mode: the normalised feature and the class of every labelled pixel.

    Args:
        feats: Tensor[N, F, h, w] features of the labelled images.
        labels: int Tensor[N, H, W] their (possibly sparse) label maps.
        ignore_index: the unlabelled id.

    Returns:
        ``(Tensor[P, F], int64 Tensor[P])`` for the P labelled pixels at the feature size.
    """
    labels = _labels_at(labels, feats.shape[-2:])
    flat = _normalise(feats).flatten(2).transpose(1, 2).reshape(-1, feats.shape[1])
    lab = labels.reshape(-1)
    keep = lab != ignore_index
    return flat[keep], lab[keep]


def sparse_pseudo_labels(feats, support, support_labels, top_k=3, threshold=0.5, size=None,
                         ignore_index=255, chunk=4096):
    """Each labelled pixel claims its ``top_k`` most similar sample pixels above ``threshold``.

    Args:
        feats: Tensor[B, F, h, w] features of the samples.
        support: Tensor[P, F] normalised features of the labelled pixels
            (:func:`support_features`).
        support_labels: int Tensor[P] their classes.
        top_k: pixels each labelled pixel claims per sample (official 3).
        threshold: the minimum cosine of a claim (official 0.5).
        size: (H, W) of the output (nearest); None keeps (h, w).
        ignore_index: the id of unclaimed pixels.
        chunk: labelled pixels compared at once (memory: ``chunk * h * w`` floats per sample).

    Returns:
        int64 Tensor[B, H, W]: mostly ``ignore_index``, the claimed pixels labelled.
    """
    b, _, h, w = feats.shape
    q = _normalise(feats).flatten(2)  # [B, F, hw]
    k = min(int(top_k), h * w)
    out = torch.full((b, h * w), ignore_index, dtype=torch.long, device=feats.device)
    support = support.to(q)
    support_labels = support_labels.to(feats.device)
    for i in range(b):
        best = torch.full((h * w,), -float('inf'), device=feats.device)
        best_label = out[i]
        for start in range(0, support.shape[0], chunk):
            s = support[start:start + chunk]
            sim = s @ q[i]  # [p, hw]
            vals, idx = sim.topk(k, dim=1)
            lab = support_labels[start:start + chunk, None].expand_as(idx)
            ok = vals > threshold
            vals, idx, lab = vals[ok], idx[ok], lab[ok]
            if vals.numel() == 0:
                continue
            # per pixel the highest cosine of this chunk's claims, then against earlier chunks
            chunk_best = torch.full_like(best, -float('inf')).scatter_reduce(
                0, idx, vals, reduce='amax')
            win = (vals == chunk_best[idx]) & (vals > best[idx])
            best_label[idx[win]] = lab[win]
            best = torch.maximum(best, chunk_best)
        out[i] = best_label
    labels = out.view(b, h, w)
    return labels if size is None else _labels_at(labels, size)
