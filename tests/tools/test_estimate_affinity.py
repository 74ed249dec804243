"""tools/estimate_affinity.py end to end on a tiny classes.json (ground truth and a config)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from catgen.affinity import AffinityMatrix

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'estimate_affinity.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('estimate_affinity_tool', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def synth(tmp_path):
    root = tmp_path / 'synth'
    root.mkdir()
    (root / 'classes.json').write_text(json.dumps({
        'source': {'classes': ['grass', 'water', 'sand']},
        'target': {'classes': ['lawn', 'shore', 'lava'],
                   'kinds': {'lawn': 'synonym', 'shore': 'mixture', 'lava': 'novel'},
                   'affinity': {'lawn': {'grass': 1.0}, 'shore': {'sand': 0.5, 'water': 0.5}}}}))
    return root


def test_ground_truth_prints_top3_writes_files_and_scores(synth, tmp_path, capsys):
    out = tmp_path / 'out'
    with pytest.warns(UserWarning, match='lava'):
        load_tool().main(['--estimator', 'ground_truth', '--synthscenes', str(synth),
                          '--out', str(out)])
    text = capsys.readouterr().out
    assert 'lawn  -> grass (1.00), water (0.00), sand (0.00)' in text
    assert 'top-1 accuracy 100.0%' in text and 'mean L1 to the true row 0.000' in text
    assert sorted(p.name for p in out.iterdir()) == ['affinity.json', 'affinity.npz',
                                                     'affinity.png', 'affinity_accuracy.json']
    m = AffinityMatrix.load(out / 'affinity')
    np.testing.assert_array_equal(m.values[1], [0, 0.5, 0.5])
    acc = json.loads((out / 'affinity_accuracy.json').read_text())
    assert acc['top1_synonyms'] == 1.0 and acc['novel'][0]['class'] == 'lava'


def test_config_with_affinity_estimator_entry(synth, tmp_path, capsys):
    AffinityMatrix([[0, 1, 0], [0, 0, 1], [1, 0, 0]], ['lawn', 'shore', 'lava'],
                   ['grass', 'water', 'sand']).save(tmp_path / 'saved')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f'affinity_estimator = dict(type="FromFileAffinity", '
                   f'path=r"{tmp_path / "saved"}")\n'
                   f'synthscenes = r"{synth}"\n')
    m = load_tool().main([str(cfg), '--out', str(tmp_path / 'o'), '--name', 'a'])
    assert m.meta['estimator'] == 'FromFileAffinity'
    text = capsys.readouterr().out
    assert 'top-1 accuracy 0.0%' in text and 'mean L1 to the true row 1.000' in text
    assert (tmp_path / 'o' / 'a.png').is_file()


def test_cfg_options_override_the_config(synth, tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f'affinity_estimator = dict(type="GroundTruthAffinity")\n'
                   f'synthscenes = r"{synth}"\n')
    with pytest.warns(UserWarning, match='lava'):
        m = load_tool().main([str(cfg), '--out', str(tmp_path / 'o'), '--cfg-options',
                              'affinity_estimator.uniform_mix=0.3'])
    np.testing.assert_allclose(m.values[0], [0.8, 0.1, 0.1])


def test_the_api_function_behind_the_tool(synth, tmp_path):
    """catgen.apis.affinity.estimate_affinity: the same without the command line; run options
    reach a combined estimator's components; nothing written without out_dir."""
    from catgen.apis.affinity import estimate_affinity
    est = dict(type='CombinedAffinity', estimators=[dict(type='GroundTruthAffinity'),
                                                    dict(type='GroundTruthAffinity')])
    with pytest.warns(UserWarning, match='lava'):
        r = estimate_affinity(est, synthscenes=str(synth), out_dir=str(tmp_path / 'o'),
                              name='m', use_cache=False, progress=False)
    assert r.matrix.target_classes == ('lawn', 'shore', 'lava')
    assert sorted(r.paths) == ['accuracy', 'json', 'npz', 'png']
    assert r.accuracy['top1_synonyms'] == 1.0
    assert all(not e.use_cache for e in r.estimator.estimators)
    with pytest.warns(UserWarning, match='lava'):
        bare = estimate_affinity(dict(type='GroundTruthAffinity'), synthscenes=str(synth),
                                 target_classes=['lawn', 'lava'])
    assert bare.paths == {} and bare.matrix.num_target == 2
    with pytest.raises(ValueError, match='No class names'):
        estimate_affinity(dict(type='TextAffinity', encoder=lambda n: None))
