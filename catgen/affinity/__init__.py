"""Class affinity between a target and a source label space (CAT).

:class:`AffinityMatrix` is the N_t x N_s row-stochastic matrix with both sides' class names;
estimators registered in ``catgen.registry.AFFINITY_ESTIMATORS`` produce it (the data-driven ones
run catgen's frozen pretrained wrappers, :mod:`catgen.pretrained`, on samples read by
:mod:`catgen.affinity.samples`); :func:`affinity_accuracy` / the ``AffinityAccuracy`` metric score
it against a known truth. See docs/affinity.md.
"""
from .accuracy import AffinityAccuracy, affinity_accuracy, format_affinity_accuracy
from .base_estimator import BaseAffinityEstimator, FileRef, default_cache_dir
from .combined_estimator import CombinedAffinity
from .feature_estimator import FeatureAffinity
from .file_estimator import FromFileAffinity
from .ground_truth_estimator import GroundTruthAffinity, read_affinity_truth
from .matrix import AffinityMatrix
from .postprocess import (apply_zero_row_rule, keep_top_k, mix_uniform, rows_from_counts,
                          rows_from_scores, softmax_rows)
from .segmenter_estimator import SegmenterAffinity
from .text_estimator import TextAffinity

__all__ = [
    'AffinityMatrix', 'BaseAffinityEstimator', 'FileRef', 'default_cache_dir',
    'affinity_accuracy', 'format_affinity_accuracy', 'AffinityAccuracy',
    'GroundTruthAffinity', 'read_affinity_truth', 'FromFileAffinity', 'TextAffinity',
    'CombinedAffinity', 'SegmenterAffinity', 'FeatureAffinity', 'rows_from_scores',
    'rows_from_counts', 'softmax_rows', 'keep_top_k', 'mix_uniform', 'apply_zero_row_rule',
]
