"""Few-shot subsets: nested, seeded selections of training ids."""
import numpy as np


def select_few_shot(ids, num_shots, seed=0):
    """Pick ``num_shots`` ids out of ``ids``, nested across shot counts.

    The ids are sorted, permuted once by ``numpy.random.Generator(PCG64(seed))`` (cross-platform),
    and the first ``num_shots`` of that permutation are returned in permutation order. So, for a
    fixed seed, the 25-shot subset is the first 25 of the 50-shot subset, and so on.

    Args:
        ids: the candidate ids (file stems), any order.
        num_shots: how many to keep; ``None`` or ``-1`` keeps all (in sorted order).
        seed: the subset seed.

    Returns:
        list[str] of length ``num_shots``.
    """
    ids = sorted(ids)
    if num_shots is None or num_shots == -1:
        return ids
    if not 0 < num_shots <= len(ids):
        raise ValueError(f'num_shots={num_shots} must be in [1, {len(ids)}] (the split has '
                         f'{len(ids)} images); use num_shots=-1 to keep them all.')
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(len(ids))
    return [ids[i] for i in perm[:num_shots]]
