"""AffinityAccuracy, the MMEngine metric around affinity_accuracy, built from a config."""
import math

import pytest

from catgen.affinity import AffinityMatrix
from catgen.affinity.accuracy import AffinityAccuracy  # noqa: F401 (registers)
from catgen.registry import METRICS

S = ('grass', 'water', 'sand', 'flower')
T = ('lawn', 'ocean', 'meadow', 'lava')
PRED = AffinityMatrix([[0.9, 0.1, 0.0, 0.0],     # lawn -> grass (right)
                       [0.0, 0.4, 0.6, 0.0],     # ocean -> sand (wrong)
                       [0.5, 0.0, 0.0, 0.5],     # meadow: L1 to (.7, 0, 0, .3) = 0.4
                       [0.1, 0.2, 0.3, 0.4]], T, S)
TRUTH = {'source': {'classes': list(S)},
         'target': {'classes': list(T),
                    'kinds': {'lawn': 'synonym', 'ocean': 'synonym', 'meadow': 'mixture',
                              'lava': 'novel'},
                    'affinity': {'lawn': {'grass': 1.0}, 'ocean': {'water': 1.0},
                                 'meadow': {'grass': 0.7, 'flower': 0.3}}}}


def test_matrix_file_against_classes_json(tmp_path):
    PRED.save(tmp_path / 'aff')
    metric = METRICS.build(dict(type='AffinityAccuracy', matrix=str(tmp_path / 'aff.json'),
                                truth=TRUTH))
    metric.process({}, [{}])
    r = metric.evaluate(1)
    assert r['affinity/top1_synonyms'] == 0.5 and r['affinity/num_synonyms'] == 2
    assert r['affinity/l1_mixtures'] == pytest.approx(0.4)


def test_runs_matrix_from_data_samples_and_truth_from_dataset_meta():
    metric = AffinityAccuracy()
    metric.dataset_meta = {'affinity': TRUTH['target']['affinity'],
                           'kinds': TRUTH['target']['kinds']}
    metric.process({}, [{'affinity_matrix': PRED}, {'affinity_matrix': PRED.to_json_dict()}])
    r = metric.evaluate(2)
    assert r['affinity/top1_synonyms'] == 0.5
    metric = AffinityAccuracy(truth=TRUTH)
    metric.process({}, [{}])
    with pytest.raises(ValueError, match='no matrix'):
        metric.evaluate(1)
    metric = AffinityAccuracy(matrix=PRED)
    metric.dataset_meta = {}
    with pytest.raises(ValueError, match='no ground truth'):
        metric.compute_metrics([None])


def test_builtin_truth_without_mixtures_gives_nan():
    from catgen.datasets.synthscenes import SOURCE_CLASSES
    m = AffinityMatrix([[1.0] + [0.0] * 19], ['lawn'], SOURCE_CLASSES)
    r = AffinityAccuracy(matrix=m, truth='builtin').compute_metrics([None])
    assert r['top1_synonyms'] == 0.0 and math.isnan(r['l1_mixtures'])


def test_metrics_registry_finds_it_without_an_explicit_import():
    """AffinityAccuracy lives in catgen.affinity; METRICS imports it through its location."""
    import subprocess
    import sys
    code = ("from catgen.registry import METRICS\n"
            "m = METRICS.build(dict(type='AffinityAccuracy', truth='builtin'))\n"
            "print(type(m).__module__)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == 'catgen.affinity.accuracy'
