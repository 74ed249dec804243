"""Every config under configs/affinity/ parses and builds its estimator (nothing is loaded: models
and data sets are read on the first estimate)."""
import glob

import pytest
from mmengine.config import Config

from catgen.affinity import BaseAffinityEstimator
from catgen.registry import AFFINITY_ESTIMATORS

CONFIGS = sorted(glob.glob('configs/affinity/*.py'))


def test_one_config_per_estimator():
    names = {c.split('/')[-1] for c in CONFIGS}
    assert {'ground_truth_synthscenes.py', 'text_synthscenes.py', 'segmenter_synthscenes.py',
            'segmenter-context_synthscenes.py',
            'segmenter-oasis_synthscenes.py', 'features-oasis_synthscenes.py',
            'features-mmseg_synthscenes.py', 'combined_synthscenes.py'} <= names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_its_estimator(path):
    cfg = Config.fromfile(path)
    assert cfg.synthscenes == 'data/synthscenes'
    est = AFFINITY_ESTIMATORS.build(cfg.affinity_estimator.to_dict())
    assert isinstance(est, BaseAffinityEstimator)
