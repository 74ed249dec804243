"""Curves written during training by the AdaptationCurveHook join the benchmark's records and
plots (DCL's quality and diversity against the iteration)."""
import json

from PIL import Image

from catgen.benchmark.grid import read_adaptation_curves
from catgen.benchmark.report import curves, plot_curves


def test_read_adaptation_curves(tmp_path):
    assert read_adaptation_curves(tmp_path) == {}
    (tmp_path / 'adaptation_curves.json').write_text(json.dumps(dict(
        diversity_key='intra_lpips_seg-x',
        records=[dict(iter=0, realism=0.1, **{'intra_lpips_seg-x': 0.5}, seconds=1.0),
                 dict(iter=100, realism=0.7, **{'intra_lpips_seg-x': 0.3}, seconds=1.0)])))
    assert read_adaptation_curves(tmp_path) == {
        0: {'adapt/realism': 0.1, 'adapt/intra_lpips_seg-x': 0.5},
        100: {'adapt/realism': 0.7, 'adapt/intra_lpips_seg-x': 0.3}}


def test_report_draws_quality_and_diversity_per_strategy(tmp_path):
    bench = dict(strategies=dict(ft='x', dcl='y'),
                 metrics=[dict(key='adapt/realism', name='quality', lower_is_better=False),
                          dict(key='adapt/div', name='diversity', lower_is_better=False)])
    records = []
    for s, drop in (('ft', 0.3), ('dcl', 0.1)):
        for seed in (0, 1):
            curve = {str(it): {'adapt/realism': 0.2 + it / 200, 'adapt/div': 0.5 - drop * it / 100
                               + 0.01 * seed} for it in (0, 100)}
            records.append(dict(strategy=s, shots=10, seed=seed, curve=curve,
                                metrics=curve['100'], train_s=1, test_s=1))
    table = curves(records, bench)
    assert table[('dcl', 10)]['adapt/div'][1][:2] == (100, 0.4 + 0.005)
    assert table[('ft', 10)]['adapt/realism'][0][:2] == (0, 0.2)
    paths = plot_curves(table, bench, str(tmp_path))
    with Image.open(paths[0]) as im:
        assert paths[0].endswith('curves_10shots.png') and im.size[0] > 400
