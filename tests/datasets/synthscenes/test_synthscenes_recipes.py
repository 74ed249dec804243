"""SynthScenes classes, recipes and ground truth: consistent, serialisable, and true to names."""
import json

import numpy as np
import pytest

from catgen.datasets.synthscenes import (SOURCE_CLASSES, SOURCE_PALETTE, SOURCE_RECIPES,
                                         TARGET_CLASSES, TARGET_KINDS, TARGET_PALETTE,
                                         TARGET_RECIPES, TRUE_AFFINITY, classes_json,
                                         render_recipe, true_affinity_matrix)


def _render(recipe, seed=0, res=64):
    return render_recipe(recipe, np.random.default_rng(seed), res).reshape(-1, 3).astype(float)


def test_class_lists_and_kinds():
    assert len(SOURCE_CLASSES) == 20 and len(set(SOURCE_CLASSES)) == 20
    assert len(TARGET_CLASSES) == 11 and not set(SOURCE_CLASSES) & set(TARGET_CLASSES)
    for name in ('sky', 'grass', 'water', 'sand', 'road', 'brick', 'rock', 'snow', 'flower',
                 'tree'):
        assert name in SOURCE_CLASSES
    assert {k for k, v in TARGET_KINDS.items() if v == 'synonym'} == {
        'lawn', 'ocean', 'pavement', 'wall', 'boulder'}
    assert {k for k, v in TARGET_KINDS.items() if v == 'novel'} == {'lava', 'ice'}
    assert {k for k, v in TARGET_KINDS.items() if v == 'mixture'} == {
        'meadow', 'shore', 'forest', 'overcast'}


def test_true_affinity_rows():
    assert TRUE_AFFINITY['lawn'] == {'grass': 1.0}
    assert TRUE_AFFINITY['meadow'] == {'grass': 0.7, 'flower': 0.3}
    assert TRUE_AFFINITY['shore'] == {'sand': 0.5, 'water': 0.5}
    assert TRUE_AFFINITY['forest'] == {'tree': 0.6, 'grass': 0.4}
    assert 'lava' not in TRUE_AFFINITY and 'ice' not in TRUE_AFFINITY
    mat = true_affinity_matrix()
    assert mat.shape == (11, 20)
    for i, name in enumerate(TARGET_CLASSES):
        expected = 0.0 if TARGET_KINDS[name] == 'novel' else 1.0
        assert mat[i].sum() == pytest.approx(expected)
    assert mat[TARGET_CLASSES.index('ocean'), SOURCE_CLASSES.index('water')] == 1.0
    # Mixture rows are exactly what the recipes mix.
    for name, recipe in TARGET_RECIPES.items():
        if 'mixture' in recipe:
            assert {c['recipe']: c['p'] for c in recipe['mixture']} == TRUE_AFFINITY[name]


def test_synonyms_render_exactly_as_their_source_class():
    for name, kind in TARGET_KINDS.items():
        if kind != 'synonym':
            continue
        src = next(iter(TRUE_AFFINITY[name]))
        strip = {k: v for k, v in TARGET_RECIPES[name].items() if k not in ('name', 'same_as')}
        assert strip == {k: v for k, v in SOURCE_RECIPES[src].items() if k != 'name'}
        np.testing.assert_array_equal(_render(TARGET_RECIPES[name], 3),
                                      _render(SOURCE_RECIPES[src], 3))


def test_classes_json_is_serialisable_and_complete():
    meta = json.loads(json.dumps(classes_json({'seed': 0})))
    assert meta['name'] == 'SynthScenes' and meta['settings'] == {'seed': 0}
    assert meta['source']['classes'] == list(SOURCE_CLASSES)
    assert [r['name'] for r in meta['target']['recipes']] == list(TARGET_CLASSES)
    assert meta['target']['kinds'] == TARGET_KINDS
    assert meta['target']['affinity'] == TRUE_AFFINITY
    for domain, n in (('source', 20), ('target', 11)):
        pal = meta[domain]['palette']
        assert len(pal) == n and len({tuple(c) for c in pal}) == n
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in pal)
    assert len(SOURCE_PALETTE) == 20 and len(TARGET_PALETTE) == 11


def test_recipes_look_like_their_names():
    mean = {name: _render(SOURCE_RECIPES[name]).mean(0) for name in SOURCE_CLASSES}
    mean.update({name: _render(TARGET_RECIPES[name]).mean(0) for name in ('lava', 'ice')})
    r, g, b = 0, 1, 2
    for name in ('sky', 'water'):
        assert mean[name][b] > mean[name][g] + 20 and mean[name][b] > mean[name][r] + 50, name
    for name in ('grass', 'tree'):
        assert mean[name][g] > mean[name][r] + 30 and mean[name][g] > mean[name][b] + 30, name
    assert mean['brick'][r] > mean['brick'][g] + 60 and mean['brick'][r] > mean['brick'][b] + 60
    assert mean['lava'][r] > mean['lava'][g] > mean['lava'][b]
    assert mean['snow'].min() > 210 and mean['cloud'].min() > 180
    assert mean['sand'][r] > mean['sand'][g] > mean['sand'][b] and mean['sand'].mean() > 140
    assert mean['road'].max() < 110 and np.ptp(mean['road']) < 15       # dark grey
    assert mean['ice'][b] >= mean['ice'][g] > mean['ice'][r] and mean['ice'].min() > 160
    # Textures have the pattern their name suggests: grass varies, road and sun hardly do.
    std = {n: _render(SOURCE_RECIPES[n]).std(0).mean() for n in ('grass', 'road', 'sun', 'brick')}
    assert std['grass'] > 2 * std['sun'] and std['brick'] > 2 * std['road']


@pytest.mark.parametrize('name,a_test,p', [
    ('meadow', lambda px: px[:, 0] < px[:, 1], 0.7),   # grass is green, flower is not
    ('shore', lambda px: px[:, 0] > px[:, 2], 0.5),    # sand is red > blue, water is not
])
def test_mixture_pixels_follow_p(name, a_test, p):
    px = _render(TARGET_RECIPES[name], seed=11, res=128)
    frac = a_test(px).mean()
    assert abs(frac - p) < 0.02, (name, frac)  # 3 sigma of 16384 Bernoulli(p) is < 0.012


def test_render_recipe_mask_and_errors():
    mask = np.zeros((32, 32), bool)
    mask[:5, :7] = True
    img = render_recipe(SOURCE_RECIPES['brick'], np.random.default_rng(0), 32, mask)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert not img[~mask].any() and img[mask].any()
    bad = dict(SOURCE_RECIPES['road'], pattern={'type': 'plaid'})
    with pytest.raises(ValueError, match='plaid'):
        render_recipe(bad, np.random.default_rng(0), 16)
