import pytest
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import init_default_scope

from catgen.registry import (AFFINITY_ESTIMATORS, DATASETS, HOOKS, METRICS, MODELS,
                             TRANSFER_STRATEGIES, TRANSFORMS, VISUALIZERS, CatgenRegistry)


def test_children_of_mmengine_roots_with_locations():
    for reg in (MODELS, DATASETS, TRANSFORMS, METRICS, HOOKS, VISUALIZERS):
        assert reg.scope == 'catgen'
        assert reg.parent is not None and reg.parent.scope == 'mmengine'
        assert reg._locations, reg.name
    for reg in (AFFINITY_ESTIMATORS, TRANSFER_STRATEGIES):
        assert reg.scope == 'catgen' and reg._locations


def test_builds_through_root_with_default_scope():
    init_default_scope('catgen')
    model = ROOT_MODELS.build(dict(type='OASISSynthesizer', generator=dict(
        type='OASISGenerator', num_classes=3, base_channels=2, crop_size=32,
        channel_multipliers=(4, 2, 1)), discriminator=None,
        data_preprocessor=dict(type='SISDataPreprocessor', num_classes=3)))
    assert type(model).__name__ == 'OASISSynthesizer'


@pytest.mark.parametrize('typo,expected', [('OASISGenertor', 'OASISGenerator'),
                                           ('SPADEGenrator', 'SPADEGenerator')])
def test_unknown_type_names_registry_and_closest(typo, expected):
    init_default_scope('catgen')
    for builder in (MODELS, ROOT_MODELS):
        with pytest.raises(KeyError) as exc:
            builder.build(dict(type=typo))
        msg = str(exc.value)
        assert '"model" registry' in msg and expected in msg and 'custom_imports' in msg


def test_own_registries_explain_unknown_names():
    reg = CatgenRegistry('thing', scope='catgen')

    @reg.register_module()
    class MyEstimator:
        pass

    with pytest.raises(KeyError, match='MyEstimator'):
        reg.build(dict(type='MyEstimatr'))
    assert isinstance(reg.build(dict(type='MyEstimator')), MyEstimator)
