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


def _model_specs(est_cfg):
    for key in ('segmenter', 'backbone'):
        if isinstance(est_cfg.get(key), dict):
            yield est_cfg[key]
    for sub in est_cfg.get('estimators', []):
        yield from _model_specs(sub)


@pytest.mark.parametrize('path', CONFIGS)
def test_model_specs_name_a_pretrained_wrapper_and_its_arguments(path):
    """Segmenter / backbone dicts resolve to a catgen.pretrained wrapper whose constructor
    takes exactly the arguments the config gives (nothing is built or read)."""
    import inspect

    from catgen.pretrained import resolve_spec
    for spec in _model_specs(Config.fromfile(path).affinity_estimator.to_dict()):
        cls, kwargs = resolve_spec(spec)
        inspect.signature(cls.__init__).bind(None, **kwargs)   # raises on an unknown argument
