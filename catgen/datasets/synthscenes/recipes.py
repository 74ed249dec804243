"""SynthScenes classes and texture recipes: the appearance half of the ground truth.

A *recipe* is a JSON-serialisable dict that says how the pixels of one region look::

    {'name': 'grass',
     'base': [r, g, b],        # colour where the pattern weight t = 0 (0..255)
     'color2': [r, g, b],      # colour where t = 1
     'jitter': 10.0,           # per-instance colour shift, uniform in [-jitter, jitter] per channel
     'pattern': {'type': 'noise', 'scale': 2.0, 'octaves': 2, 'contrast': 2.0},
     'noise': 10.0}            # per-pixel noise, uniform in [-noise, noise], same on all channels

Pattern types (lengths are in *base pixels*: 1/64 of the image side, so textures keep their
look at 128 and 256):

- ``flat``: ``t = 0``.
- ``stripes``: ``angle`` (degrees; 0 = horizontal bands), ``angle_jitter`` (per instance),
  ``period``, ``duty`` (fraction of each period in ``color2``).
- ``checker``: ``period`` (side of a square).
- ``spots``: discs of ``color2`` of ``radius`` covering about ``density`` of the area; a
  radius below one pixel gives a per-pixel speckle with probability ``density``.
- ``gradient``: ``direction`` ``'vertical'`` (t goes 0 -> 1 from the top of the image to the
  bottom) or ``'horizontal'`` (left -> right).
- ``noise``: fractal value noise, ``scale`` (cell size of the coarsest octave, rounded to a
  power of two; each further octave halves it, down to one pixel), ``octaves``,
  ``contrast`` (t = clip((f - 0.5) * contrast + 0.5, 0, 1)).

A target *synonym* has a recipe equal to its source class's (plus ``'name'`` and
``'same_as'``). A target *mixture* has ``{'name': .., 'mixture': [{'recipe': A, 'p': p},
{'recipe': B, 'p': 1 - p}]}``: each pixel is drawn from source recipe A with probability p,
else from B. A *novel* class has a recipe unlike any source class, and no affinity row.
"""
import copy

import numpy as np

NAME = 'SynthScenes'
VERSION = 1

DOMAINS = ('source', 'target')
SPLITS = ('train', 'val')
SHOTS = (1, 5, 25, 50, 100, 200, 400)
IGNORE_INDEX = 255


def _r(name, base, color2, jitter, pattern, noise):
    return {'name': name, 'base': list(base), 'color2': list(color2), 'jitter': float(jitter),
            'pattern': dict(pattern), 'noise': float(noise)}


# ----------------------------------------------------------------------------------------------
# Source domain: 20 classes with plain English names.
# ----------------------------------------------------------------------------------------------
_SOURCE = [
    # sky band
    _r('sky', (95, 150, 225), (175, 210, 245), 10, {'type': 'gradient', 'direction': 'vertical'},
       3),
    _r('cloud', (236, 239, 246), (185, 192, 208), 8,
       {'type': 'noise', 'scale': 8.0, 'octaves': 3, 'contrast': 1.5}, 3),
    _r('sun', (255, 222, 90), (255, 246, 190), 5, {'type': 'flat'}, 2),
    _r('mountain', (105, 100, 128), (150, 146, 168), 10,
       {'type': 'noise', 'scale': 8.0, 'octaves': 3, 'contrast': 1.5}, 4),
    # ground band
    _r('grass', (58, 135, 45), (100, 185, 62), 10,
       {'type': 'noise', 'scale': 2.0, 'octaves': 2, 'contrast': 2.0}, 10),
    _r('water', (35, 85, 165), (85, 145, 215), 10,
       {'type': 'stripes', 'angle': 0.0, 'angle_jitter': 10.0, 'period': 4.0, 'duty': 0.35}, 5),
    _r('sand', (216, 193, 142), (150, 120, 80), 10,
       {'type': 'spots', 'density': 0.15, 'radius': 0.4}, 6),
    _r('road', (76, 76, 82), (98, 98, 104), 8, {'type': 'flat'}, 8),
    _r('snow', (243, 246, 251), (212, 222, 238), 5,
       {'type': 'noise', 'scale': 8.0, 'octaves': 2, 'contrast': 1.0}, 4),
    _r('dirt', (116, 80, 50), (84, 57, 34), 10,
       {'type': 'noise', 'scale': 4.0, 'octaves': 3, 'contrast': 1.5}, 8),
    _r('gravel', (152, 146, 138), (96, 91, 86), 8,
       {'type': 'spots', 'density': 0.35, 'radius': 0.9}, 10),
    # objects
    _r('tree', (30, 86, 36), (62, 122, 46), 10,
       {'type': 'noise', 'scale': 4.0, 'octaves': 2, 'contrast': 2.0}, 8),
    _r('rock', (128, 122, 115), (84, 80, 78), 12,
       {'type': 'noise', 'scale': 4.0, 'octaves': 3, 'contrast': 1.5}, 6),
    _r('brick', (172, 60, 44), (118, 38, 32), 12, {'type': 'checker', 'period': 3.0}, 6),
    _r('building', (186, 181, 171), (70, 80, 102), 20,
       {'type': 'stripes', 'angle': 90.0, 'angle_jitter': 0.0, 'period': 5.0, 'duty': 0.3}, 4),
    _r('car', (236, 200, 50), (188, 150, 30), 30, {'type': 'gradient', 'direction': 'horizontal'},
       3),
    _r('fence', (205, 200, 186), (110, 86, 60), 10,
       {'type': 'stripes', 'angle': 90.0, 'angle_jitter': 3.0, 'period': 3.0, 'duty': 0.5}, 5),
    _r('flower', (226, 70, 170), (250, 222, 60), 15,
       {'type': 'spots', 'density': 0.25, 'radius': 0.8}, 8),
    _r('wood', (150, 100, 55), (108, 68, 37), 12,
       {'type': 'stripes', 'angle': 0.0, 'angle_jitter': 8.0, 'period': 2.5, 'duty': 0.5}, 5),
    _r('metal', (166, 173, 186), (108, 114, 128), 10,
       {'type': 'gradient', 'direction': 'horizontal'}, 3),
]

SOURCE_CLASSES = tuple(r['name'] for r in _SOURCE)
SOURCE_RECIPES = {r['name']: r for r in _SOURCE}

# ----------------------------------------------------------------------------------------------
# Target domain: 11 classes under other names, of three kinds.
# ----------------------------------------------------------------------------------------------
TARGET_CLASSES = ('overcast', 'lawn', 'ocean', 'pavement', 'meadow', 'shore', 'lava', 'ice',
                  'wall', 'boulder', 'forest')

_SYNONYMS = {'lawn': 'grass', 'ocean': 'water', 'pavement': 'road', 'wall': 'brick',
             'boulder': 'rock'}
_MIXTURES = {  # name: (A, p, B)
    'overcast': ('cloud', 0.6, 'sky'),
    'meadow': ('grass', 0.7, 'flower'),
    'shore': ('sand', 0.5, 'water'),
    'forest': ('tree', 0.6, 'grass'),
}
_NOVEL = {
    'lava': _r('lava', (62, 14, 10), (255, 124, 22), 10,
               {'type': 'noise', 'scale': 4.0, 'octaves': 3, 'contrast': 3.0}, 6),
    'ice': _r('ice', (168, 214, 236), (236, 248, 255), 8,
              {'type': 'stripes', 'angle': 60.0, 'angle_jitter': 20.0, 'period': 6.0,
               'duty': 0.25}, 3),
}


def _target_recipe(name):
    if name in _SYNONYMS:
        recipe = copy.deepcopy(SOURCE_RECIPES[_SYNONYMS[name]])
        recipe['name'] = name
        recipe['same_as'] = _SYNONYMS[name]
        return recipe
    if name in _MIXTURES:
        a, p, b = _MIXTURES[name]
        return {'name': name,
                'mixture': [{'recipe': a, 'p': p}, {'recipe': b, 'p': round(1 - p, 6)}]}
    return copy.deepcopy(_NOVEL[name])


TARGET_RECIPES = {name: _target_recipe(name) for name in TARGET_CLASSES}
TARGET_KINDS = {name: ('synonym' if name in _SYNONYMS else
                       'mixture' if name in _MIXTURES else 'novel') for name in TARGET_CLASSES}
# Ground-truth affinity rows over source classes; novel classes have none.
TRUE_AFFINITY = {}
for _name in TARGET_CLASSES:
    if _name in _SYNONYMS:
        TRUE_AFFINITY[_name] = {_SYNONYMS[_name]: 1.0}
    elif _name in _MIXTURES:
        _a, _p, _b = _MIXTURES[_name]
        TRUE_AFFINITY[_name] = {_a: _p, _b: round(1 - _p, 6)}

# Palettes for visualising label maps: hand-picked, well separated (Kelly's colours and more).
_PALETTE_20 = [
    [135, 206, 235], [255, 255, 255], [255, 215, 0], [128, 0, 128], [0, 200, 0],
    [0, 0, 255], [244, 200, 140], [64, 64, 64], [200, 255, 255], [130, 80, 30],
    [160, 160, 160], [0, 90, 0], [255, 128, 0], [200, 0, 0], [255, 0, 255],
    [0, 255, 255], [128, 128, 0], [255, 150, 200], [90, 40, 0], [0, 0, 120],
]
SOURCE_PALETTE = [list(c) for c in _PALETTE_20[:len(SOURCE_CLASSES)]]
TARGET_PALETTE = [[200, 210, 225], [0, 200, 0], [0, 0, 255], [64, 64, 64], [200, 255, 0],
                  [244, 200, 140], [255, 60, 0], [150, 255, 255], [200, 0, 0], [160, 160, 160],
                  [0, 90, 0]]


def domain_classes(domain):
    """The class names of ``domain`` (``'source'`` or ``'target'``), on-disk id order."""
    check_domain(domain)
    return SOURCE_CLASSES if domain == 'source' else TARGET_CLASSES


def domain_recipes(domain):
    """``{name: recipe}`` of ``domain`` (mixtures reference source recipes by name)."""
    check_domain(domain)
    return SOURCE_RECIPES if domain == 'source' else TARGET_RECIPES


def check_domain(domain):
    if domain not in DOMAINS:
        raise ValueError(f'domain must be one of {DOMAINS}, got {domain!r}.')


def check_split(split):
    if split not in SPLITS:
        raise ValueError(f'split must be one of {SPLITS}, got {split!r}.')


def true_affinity_matrix():
    """The ground-truth affinity: ``float64[N_t, N_s]``, rows in ``TARGET_CLASSES`` order,
    columns in ``SOURCE_CLASSES`` order; one-hot for synonyms, p / 1-p for mixtures, all zero
    for novel classes (see ``TARGET_KINDS``)."""
    mat = np.zeros((len(TARGET_CLASSES), len(SOURCE_CLASSES)))
    for i, name in enumerate(TARGET_CLASSES):
        for src, w in TRUE_AFFINITY.get(name, {}).items():
            mat[i, SOURCE_CLASSES.index(src)] = w
    return mat


def classes_json(settings):
    """The ``classes.json`` dict for a set written with ``settings`` (a dict)."""
    return {
        'name': NAME,
        'version': VERSION,
        'settings': dict(settings),
        'source': {
            'classes': list(SOURCE_CLASSES),
            'palette': copy.deepcopy(SOURCE_PALETTE),
            'recipes': [copy.deepcopy(SOURCE_RECIPES[n]) for n in SOURCE_CLASSES],
        },
        'target': {
            'classes': list(TARGET_CLASSES),
            'palette': copy.deepcopy(TARGET_PALETTE),
            'recipes': [copy.deepcopy(TARGET_RECIPES[n]) for n in TARGET_CLASSES],
            'kinds': dict(TARGET_KINDS),
            'affinity': copy.deepcopy(TRUE_AFFINITY),
        },
    }
