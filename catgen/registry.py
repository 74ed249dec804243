"""catgen's registries: children of MMEngine's root registries, scope ``catgen``.

Every registry names the package that holds its members in ``locations`` so that building from a
config imports the right module on demand. Three registries are catgen's own:
``AFFINITY_ESTIMATORS``, ``TRANSFER_STRATEGIES`` and ``PRETRAINED`` (frozen pretrained networks
shared by affinity estimation and evaluation: mmseg segmenters, the OASIS discriminator as a
segmenter, timm backbones).

A config ``type`` that no registry knows fails with a :class:`KeyError` that names the registry and
the closest registered names (see :class:`CatgenRegistry`).
"""
import difflib

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry


class CatgenRegistry(Registry):
    """A :class:`mmengine.registry.Registry` whose failed look-ups explain themselves.

    ``get`` behaves as MMEngine's (own members, then parents, then scoped children), but where
    MMEngine returns ``None`` and later raises "X is not in the registry", this raises a
    :class:`KeyError` that names the registry, lists the closest registered names and says how
    to register a plugin.
    """

    def get(self, key):
        obj = super().get(key)
        if obj is None and isinstance(key, str):
            raise KeyError(self._unknown_key_message(key))
        return obj

    def _known_names(self):
        names = set(self.module_dict)
        parent = self.parent
        while parent is not None:
            names.update(parent.module_dict)
            parent = parent.parent
        return sorted(names)

    def _unknown_key_message(self, key):
        short = key.split('.')[-1]
        known = self._known_names()
        close = difflib.get_close_matches(short, known, n=5, cutoff=0.5)
        if not close:  # fall back on a case-insensitive substring match
            close = [n for n in known if short.lower() in n.lower()][:5]
        hint = f' Closest registered names: {", ".join(close)}.' if close else ''
        return (f'"{key}" is not registered in catgen\'s "{self.name}" registry (scope '
                f'"{self.scope}").{hint} Check the spelling of `type` in your config; a plugin '
                f'must be imported first, e.g. custom_imports=dict(imports=["my_plugin"]).')


def _child(name, parent, *locations):
    return CatgenRegistry(name, parent=parent, scope='catgen', locations=list(locations))


MODELS = _child('model', MMENGINE_MODELS, 'catgen.models', 'catgen.evaluation.feature_extractors')
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS, 'catgen.engine')
DATASETS = _child('dataset', MMENGINE_DATASETS, 'catgen.datasets')
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS, 'catgen.datasets')
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, 'catgen.datasets.transforms')
METRICS = _child('metric', MMENGINE_METRICS, 'catgen.evaluation', 'catgen.affinity')
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR, 'catgen.evaluation')
HOOKS = _child('hook', MMENGINE_HOOKS, 'catgen.engine')
LOOPS = _child('loop', MMENGINE_LOOPS, 'catgen.engine')
RUNNERS = _child('runner', MMENGINE_RUNNERS, 'catgen.engine')
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS, 'catgen.engine')
OPTIM_WRAPPERS = _child('optim wrapper', MMENGINE_OPTIM_WRAPPERS, 'catgen.engine')
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, 'catgen.engine')
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS, 'catgen.engine')
WEIGHT_INITIALIZERS = _child('weight initializer', MMENGINE_WEIGHT_INITIALIZERS, 'catgen.models')
VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, 'catgen.visualization')
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS, 'catgen.visualization')

# catgen's own registries (no MMEngine parent).
AFFINITY_ESTIMATORS = CatgenRegistry('affinity estimator', scope='catgen',
                                     locations=['catgen.affinity'])
TRANSFER_STRATEGIES = CatgenRegistry('transfer strategy', scope='catgen',
                                     locations=['catgen.transfer'])
PRETRAINED = CatgenRegistry('pretrained model', scope='catgen', locations=['catgen.pretrained'])
