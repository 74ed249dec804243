"""Proxy masks: k-means clusters of a generator's normalised features (SIS-UG).

Chae et al. (NeurIPS 2023) observe that the feature maps of an unconditional generator segment
its samples: clustering the per-pixel features of random samples gives cluster centres, and
assigning every pixel of any sample to its nearest centre gives that sample's *proxy mask*, a
label map in the generator's own ``k`` "classes" that needs no annotation.

catgen clusters unit-length feature vectors by cosine (spherical k-means): the features are
L2-normalised along the channels, centres are initialised by k-means++ (seeded), refined by
Lloyd iterations (each centre the normalised mean of its members; an empty cluster is re-seeded
at the pixel farthest from its centre), and a pixel's cluster is the centre of highest cosine.
"""
import torch
import torch.nn.functional as F


def normalise_features(feats):
    """Tensor[B, C, h, w] -> unit vectors along C (float32)."""
    return F.normalize(feats.float(), dim=1, eps=1e-8)


def feature_vectors(feats):
    """Tensor[B, C, h, w] -> the normalised per-pixel vectors Tensor[B * h * w, C]."""
    return normalise_features(feats).permute(0, 2, 3, 1).reshape(-1, feats.shape[1])


def fit_kmeans(vectors, k, iters=50, seed=0, tol=1e-6):
    """Spherical k-means of unit vectors.

    Args:
        vectors: Tensor[N, C] of unit vectors (:func:`feature_vectors`).
        k: the number of clusters (<= N).
        iters: Lloyd iterations at most.
        seed: seed of the k-means++ initialisation.
        tol: stop when the mean cosine to the assigned centre improves by less than this.

    Returns:
        ``(centres Tensor[k, C] unit vectors, mean cosine float, iterations run int)``.
    """
    n = vectors.shape[0]
    if not 1 <= int(k) <= n:
        raise ValueError(f'k-means needs 1 <= k <= the number of vectors ({n}), got k={k}')
    k = int(k)
    x = vectors.float()
    gen = torch.Generator().manual_seed(int(seed))
    # k-means++: every next centre drawn with probability proportional to (1 - cos)^2 to the
    # nearest centre so far
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [x[first]]
    best = x @ x[first]
    for _ in range(1, k):
        dist = (1 - best).clamp(min=0) ** 2
        if float(dist.sum()) <= 0:
            idx = int(torch.randint(n, (1,), generator=gen))
        else:
            idx = int(torch.multinomial(dist.cpu() / dist.sum().cpu(), 1, generator=gen))
        centres.append(x[idx])
        best = torch.maximum(best, x @ x[idx])
    centres = torch.stack(centres)
    previous = -2.0
    it = 0
    for it in range(1, int(iters) + 1):
        cos = x @ centres.t()
        score, assign = cos.max(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        for c in torch.nonzero(counts == 0).flatten().tolist():
            far = int(score.argmin())  # an empty cluster restarts at the worst-fitted pixel
            sums[c] = x[far]
            score[far] = 1.0
        centres = F.normalize(sums, dim=1, eps=1e-8)
        mean = float(score.mean())
        if mean - previous < tol:
            break
        previous = mean
    mean = float((x @ centres.t()).max(1)[0].mean())
    return centres, mean, it


def proxy_logits(feats, centres, temperature=1.0):
    """Cosine of every pixel's normalised feature with every centre, divided by
    ``temperature``: Tensor[B, k, h, w] (``feats`` Tensor[B, C, h, w], ``centres`` [k, C])."""
    return torch.einsum('bchw,kc->bkhw', normalise_features(feats),
                        centres.float()) / float(temperature)


def assign_proxy_masks(feats, centres):
    """Proxy masks: int64 Tensor[B, h, w], each pixel the index of its nearest centre."""
    return proxy_logits(feats, centres).argmax(1)
