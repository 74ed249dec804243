"""catgen-l2sp: an example third-party catgen plugin.

Importing the package registers, in catgen's own registries,

- ``L2SP`` in ``catgen.registry.TRANSFER_STRATEGIES`` (a transfer strategy), and
- ``NameSimilarityAffinity`` in ``catgen.registry.AFFINITY_ESTIMATORS`` (an affinity estimator).

A config loads it with ``custom_imports = dict(imports=['catgen_l2sp'],
allow_failed_imports=False)``; nothing inside catgen changes.
"""
from .l2sp import L2SP
from .name_affinity import NameSimilarityAffinity

__all__ = ['L2SP', 'NameSimilarityAffinity']
