"""SynthScenes: the procedural, seeded, embedded default data set (numpy only, no torch).

A source domain of 20 plain-named classes and a target domain of 11 classes that are synonyms,
mixtures or novel, with ground-truth affinity rows. See ``docs/synthscenes.md``.

    >>> from catgen.datasets.synthscenes import generate_scene, write_synthscenes
    >>> img, label = generate_scene('target', 'train', 3)     # uint8[64, 64, 3], uint8[64, 64]
    >>> write_synthscenes('data/synthscenes')                 # or tools/prepare_synthscenes.py
"""
from .generate import (generate_scene, is_complete, make_settings, scene_rng,
                       write_synthscenes)
from .layout import LAYOUTS, make_layout
from .recipes import (DOMAINS, IGNORE_INDEX, NAME, SHOTS, SOURCE_CLASSES, SOURCE_PALETTE,
                      SOURCE_RECIPES, SPLITS, TARGET_CLASSES, TARGET_KINDS, TARGET_PALETTE,
                      TARGET_RECIPES, TRUE_AFFINITY, VERSION, classes_json, domain_classes,
                      domain_recipes, true_affinity_matrix)
from .render import render_recipe, render_scene

__all__ = [
    'generate_scene', 'write_synthscenes', 'is_complete', 'make_settings', 'scene_rng',
    'make_layout', 'LAYOUTS', 'render_scene', 'render_recipe', 'classes_json', 'domain_classes',
    'domain_recipes', 'true_affinity_matrix', 'DOMAINS', 'SPLITS', 'SHOTS', 'IGNORE_INDEX',
    'NAME', 'VERSION', 'SOURCE_CLASSES', 'SOURCE_PALETTE', 'SOURCE_RECIPES', 'TARGET_CLASSES',
    'TARGET_KINDS', 'TARGET_PALETTE', 'TARGET_RECIPES', 'TRUE_AFFINITY'
]
