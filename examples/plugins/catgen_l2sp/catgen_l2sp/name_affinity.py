"""NameSimilarityAffinity: class affinity from the spelling of the class names (difflib).

Score of (target t, source s) = ``scale * SequenceMatcher(None, t, s).ratio()`` on lower-cased
names with ``_`` and ``-`` read as spaces; rows are softmax(scores / temperature) with catgen's
shared post-processing (top-k, uniform mix). Offline, instant, and a fair lower bound: it only
knows that "grass_field" looks like "grass".
"""
import difflib

import numpy as np

from catgen.affinity import BaseAffinityEstimator
from catgen.registry import AFFINITY_ESTIMATORS


def clean(name):
    return ' '.join(str(name).lower().replace('_', ' ').replace('-', ' ').split())


@AFFINITY_ESTIMATORS.register_module()
class NameSimilarityAffinity(BaseAffinityEstimator):
    """Affinity from string similarity of class names.

    Args:
        scale: factor on the similarity ratios (in [0, 1]) before the softmax.
        **kwargs: ``BaseAffinityEstimator`` options (temperature, top_k, uniform_mix, zero_row).
    """

    name = 'name_similarity'

    def __init__(self, scale=10.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def settings(self):
        return dict(super().settings(), scale=self.scale)

    def similarity(self, target_classes, source_classes):
        """float[N_t, N_s] of difflib ratios in [0, 1]."""
        return np.array([[difflib.SequenceMatcher(None, clean(t), clean(s)).ratio()
                          for s in source_classes] for t in target_classes])

    def estimate(self, target_classes, source_classes, **ctx):
        scores = self.scale * self.similarity(target_classes, source_classes)
        return self._from_scores(scores, target_classes, source_classes)
