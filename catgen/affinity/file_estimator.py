"""FromFileAffinity: a matrix saved earlier (by AffinityMatrix.save or tools/estimate_affinity.py).

Use it to reuse an expensive estimate, or to hand-edit a matrix (edit the JSON, delete the NPZ).
"""
from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator
from .matrix import AffinityMatrix


@AFFINITY_ESTIMATORS.register_module()
class FromFileAffinity(BaseAffinityEstimator):
    """Load a saved :class:`AffinityMatrix` and check it against the expected classes.

    Args:
        path: ``<stem>.json``, ``<stem>.npz`` or ``<stem>``.
        reorder: if the file has the right names in another order (or more target classes than
            needed), reorder/select them instead of failing (default True).
    """

    name = 'FromFileAffinity'

    def __init__(self, path, reorder=True):
        super().__init__(use_cache=False)
        self.path = str(path)
        self.reorder = reorder

    def settings(self):
        return dict(path=self.path, reorder=self.reorder)

    def estimate(self, target_classes=None, source_classes=None, **ctx):
        """The saved matrix, checked (and, with ``reorder``, reordered) to the given names.

        Args:
            target_classes, source_classes: expected names (a leading don't-care name is
                accepted, as in a data set's ``metainfo['classes']``); None skips the check.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file's names do not match.
        """
        mat = AffinityMatrix.load(self.path)
        if self.reorder:
            t = _real(target_classes, mat.target_classes)
            s = _real(source_classes, mat.source_classes)
            if (t is not None and set(t) <= set(mat.target_classes)) or (
                    s is not None and sorted(s) == sorted(mat.source_classes)):
                try:
                    mat = mat.reorder(t, s)
                except ValueError:
                    pass  # check_names below gives the full explanation
        try:
            mat.check_names(target_classes, source_classes)
        except ValueError as err:
            raise ValueError(f'Affinity file {self.path} was made for other classes: {err}'
                             ) from err
        mat.meta.setdefault('estimator', self.name)
        mat.meta['loaded_from'] = self.path
        return mat


def _real(names, mine):
    """Drop a leading don't-care name when the rest matches the matrix's size."""
    if names is None:
        return None
    names = list(names)
    if len(names) == len(mine) + 1 and names[0] not in mine:
        return names[1:]
    return names
