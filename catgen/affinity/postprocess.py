"""Row post-processing: from an estimator's raw scores or counts to rows of an affinity matrix.

Every estimator ends with one of two functions:

- :func:`rows_from_scores` for similarity scores (text, features): ``softmax(S / T)`` per row,
  then keep the top-k (renormalised), then mix with the uniform distribution;
- :func:`rows_from_counts` for histograms (segmenter): ``counts / counts.sum()`` per row, then the
  same top-k and uniform mixing.

The zero-row rule
-----------------
A target class that the estimator never saw (a row of counts that sums to 0, or a row of scores
that is entirely NaN, meaning "no score") gets no information. It falls back to the rule named by
``zero_row``:

- ``'uniform'`` (default): the row becomes ``1 / N_s`` for every source class, and a
  :class:`UserWarning` names the class(es);
- ``'error'``: a :class:`ValueError` names the class(es).

Nothing divides by zero. Fallback rows skip top-k (a uniform row has no top) and are returned in
``fallback`` so that callers can record them (``AffinityMatrix.meta['fallback_classes']``) and a
combined estimator can ignore them.
"""
import warnings

import numpy as np

ZERO_ROW_RULES = ('uniform', 'error')


def _row_names(row_names, n):
    if row_names is None:
        return [f'row {i}' for i in range(n)]
    row_names = list(row_names)
    if len(row_names) != n:
        raise ValueError(f'row_names has {len(row_names)} names but there are {n} rows; pass one '
                         f'name per target class.')
    return row_names


def apply_zero_row_rule(rows, zero_mask, row_names=None, zero_row='uniform'):
    """Fill the rows flagged by ``zero_mask`` according to the zero-row rule (in place).

    Args:
        rows: float64[N_t, N_s], modified in place.
        zero_mask: bool[N_t], True for rows with no information.
        row_names: the N_t target class names (for the warning/error), or None.
        zero_row: ``'uniform'`` or ``'error'``.

    Returns:
        list[str]: names of the rows that fell back (empty if none).
    """
    if zero_row not in ZERO_ROW_RULES:
        raise ValueError(f'zero_row={zero_row!r} is not a known rule; use one of {ZERO_ROW_RULES}.')
    zero_mask = np.asarray(zero_mask, dtype=bool)
    if not zero_mask.any():
        return []
    names = _row_names(row_names, rows.shape[0])
    fallen = [names[i] for i in np.flatnonzero(zero_mask)]
    if zero_row == 'error':
        raise ValueError(f'No information for target class(es) {fallen}: the estimator never saw '
                         f'them (all-zero counts or missing scores). Add images that contain them, '
                         f"or set zero_row='uniform' to give them a uniform row.")
    warnings.warn(f'Target class(es) {fallen} were never seen by the estimator; their rows fall '
                  f'back to the uniform distribution over the {rows.shape[1]} source classes '
                  f"(zero_row='uniform').", UserWarning, stacklevel=3)
    rows[zero_mask] = 1.0 / rows.shape[1]
    return fallen


def keep_top_k(rows, top_k, skip=None):
    """Keep the ``top_k`` largest entries of each row, zero the rest, renormalise.

    Ties are broken towards the lower source index (stable sort), so exactly ``top_k`` entries
    survive. ``top_k=None`` or ``top_k >= N_s`` returns the rows unchanged.

    Args:
        rows: float64[N_t, N_s] non-negative rows summing to 1.
        top_k: int >= 1 or None.
        skip: optional bool[N_t]; rows flagged True are left as they are.

    Returns:
        float64[N_t, N_s]
    """
    rows = np.array(rows, dtype=np.float64)
    if top_k is None or top_k >= rows.shape[1]:
        return rows
    if int(top_k) != top_k or top_k < 1:
        raise ValueError(f'top_k={top_k!r} must be a positive integer (or None to keep all).')
    order = np.argsort(-rows, axis=1, kind='stable')
    keep = np.zeros_like(rows, dtype=bool)
    np.put_along_axis(keep, order[:, :int(top_k)], True, axis=1)
    if skip is not None:
        keep[np.asarray(skip, dtype=bool)] = True
    rows = np.where(keep, rows, 0.0)
    sums = rows.sum(axis=1, keepdims=True)
    # A kept set that sums to 0 cannot happen for softmax rows; guard for counts all the same.
    return np.divide(rows, sums, out=np.full_like(rows, 1.0 / rows.shape[1]), where=sums > 0)


def mix_uniform(rows, uniform_mix):
    """Return ``(1 - eps) * rows + eps / N_s`` with ``eps = uniform_mix`` in [0, 1]."""
    if not 0.0 <= uniform_mix <= 1.0:
        raise ValueError(f'uniform_mix={uniform_mix!r} must be in [0, 1] (0 = no mixing).')
    rows = np.asarray(rows, dtype=np.float64)
    if uniform_mix == 0.0:
        return rows.copy()
    return (1.0 - uniform_mix) * rows + uniform_mix / rows.shape[1]


def softmax_rows(scores, temperature=1.0):
    """Row-wise ``softmax(scores / temperature)``, numerically stable. float64[N_t, N_s]."""
    if not temperature > 0:
        raise ValueError(f'temperature={temperature!r} must be > 0 (smaller = peakier rows).')
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _check_2d(name, arr):
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f'{name} must be a 2-d array [N_t, N_s] with N_s >= 1, got shape '
                         f'{arr.shape}.')
    return arr


def rows_from_scores(scores, temperature=1.0, top_k=None, uniform_mix=0.0, row_names=None,
                     zero_row='uniform', return_fallback=False):
    """Turn similarity scores into affinity rows.

    Steps: ``softmax(scores / temperature)`` per row -> keep ``top_k`` (renormalise) -> mix with
    uniform: ``(1 - uniform_mix) * row + uniform_mix / N_s``. A row that is entirely NaN means
    "no score" and follows the zero-row rule (see the module docstring).

    Args:
        scores: float[N_t, N_s]; finite, or whole rows of NaN for missing classes.
        temperature: T > 0 of the softmax.
        top_k: keep the k largest entries per row, or None.
        uniform_mix: eps in [0, 1].
        row_names: N_t target class names, used in warnings and errors.
        zero_row: ``'uniform'`` or ``'error'``.
        return_fallback: also return the names of the rows that fell back.

    Returns:
        float64[N_t, N_s] rows summing to 1 (and ``list[str]`` if ``return_fallback``).
    """
    scores = _check_2d('scores', scores)
    nan = np.isnan(scores)
    missing = nan.all(axis=1)
    partial = nan.any(axis=1) & ~missing
    names = _row_names(row_names, scores.shape[0])
    if partial.any() or np.isinf(scores).any():
        bad = [names[i] for i in np.flatnonzero(partial | np.isinf(scores).any(axis=1))]
        raise ValueError(f'Scores of target class(es) {bad} are partly NaN or infinite; a row must '
                         f'be all finite, or all NaN to mark a class the estimator never saw.')
    rows = np.zeros_like(scores)
    if (~missing).any():
        rows[~missing] = softmax_rows(scores[~missing], temperature)
    fallen = apply_zero_row_rule(rows, missing, names, zero_row)
    rows = mix_uniform(keep_top_k(rows, top_k, skip=missing), uniform_mix)
    return (rows, fallen) if return_fallback else rows


def rows_from_counts(counts, top_k=None, uniform_mix=0.0, row_names=None, zero_row='uniform',
                     return_fallback=False):
    """Turn per-class histograms (e.g. predicted source classes over a target class's pixels)
    into affinity rows.

    Steps: ``counts / counts.sum()`` per row -> keep ``top_k`` (renormalise) -> mix with uniform.
    A row summing to 0 (the class was never seen) follows the zero-row rule.

    Args:
        counts: float or int[N_t, N_s], finite and non-negative.
        top_k, uniform_mix, row_names, zero_row, return_fallback: as :func:`rows_from_scores`.

    Returns:
        float64[N_t, N_s] rows summing to 1 (and ``list[str]`` if ``return_fallback``).
    """
    counts = _check_2d('counts', counts)
    names = _row_names(row_names, counts.shape[0])
    if not np.isfinite(counts).all() or (counts < 0).any():
        bad = [names[i] for i in np.flatnonzero(~np.isfinite(counts).all(axis=1)
                                                | (counts < 0).any(axis=1))]
        raise ValueError(f'Counts of target class(es) {bad} are negative or not finite; counts '
                         f'must be finite and >= 0.')
    sums = counts.sum(axis=1, keepdims=True)
    zero = sums[:, 0] <= 0
    rows = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    fallen = apply_zero_row_rule(rows, zero, names, zero_row)
    rows = mix_uniform(keep_top_k(rows, top_k, skip=zero), uniform_mix)
    return (rows, fallen) if return_fallback else rows
