"""AffinityMatrix and the row post-processing: values known by construction."""
import json
import math
import warnings

import numpy as np
import pytest
import torch

from catgen.affinity import AffinityMatrix, rows_from_counts, rows_from_scores

T = ('lawn', 'ocean', 'shore')
S = ('grass', 'water', 'sand')
A = np.array([[1.0, 0.0, 0.0],
              [0.0, 1.0, 0.0],
              [0.0, 0.5, 0.5]])


def make():
    return AffinityMatrix(A, T, S, meta={'estimator': 'test', 'note': [1, 2]})


# ---------------------------------------------------------------- validation
def test_valid_matrix_keeps_a_float64_copy():
    src = A.astype(np.float32)
    m = AffinityMatrix(src, T, S)
    src[0, 0] = 5
    assert m.values.dtype == np.float64 and m.values[0, 0] == 1.0
    assert m.shape == (3, 3) and m.num_target == 3 and m.num_source == 3


@pytest.mark.parametrize('values, match', [
    (A[:, :2], r'shape \(3, 2\).*\(3, 3\)'),
    (A.T[:2].T, r'shape'),
    (np.where(A == 1.0, np.nan, A), r"\['lawn', 'ocean'\].*finite"),
    (np.array([[1.5, -0.5, 0], [0, 1, 0], [0, .5, .5]]), r"\['lawn'\].*negative"),
    (np.array([[0.5, 0.4, 0], [0, 1, 0], [0, .5, .5]]), r"sum to 1.*'lawn': 0\.9"),
])
def test_validate_rejects_with_a_clear_message(values, match):
    with pytest.raises(ValueError, match=match):
        AffinityMatrix(values, T, S)


def test_row_sum_tolerance_is_1e_6():
    ok = A.copy()
    ok[0, 0] += 5e-7
    AffinityMatrix(ok, T, S)
    bad = A.copy()
    bad[0, 0] += 5e-6
    with pytest.raises(ValueError, match='sum to 1'):
        AffinityMatrix(bad, T, S)


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="Duplicate target class names \\['lawn'\\]"):
        AffinityMatrix(A, ('lawn', 'lawn', 'shore'), S)


def test_check_names_accepts_dontcare_first_and_lists_differences():
    m = make()
    m.check_names(T, S)
    m.check_names(('unlabeled', *T), ('unlabeled', *S))  # metainfo['classes'] style
    with pytest.raises(ValueError, match=r"missing \['rock'\].*unexpected \['sand'\]"):
        m.check_names(source_classes=('grass', 'water', 'rock'))
    with pytest.raises(ValueError, match='another order.*reorder'):
        m.check_names(target_classes=('ocean', 'lawn', 'shore'))


def test_reorder_permutes_rows_and_columns():
    r = make().reorder(('shore', 'lawn'), ('sand', 'water', 'grass'))
    np.testing.assert_array_equal(r.values, [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match='permutation'):
        make().reorder(source_classes=('grass', 'water'))


# ---------------------------------------------------------------- post-processing
def test_from_scores_softmax_temperature_topk_uniform():
    ln2 = math.log(2.0)
    scores = np.array([[0.0, ln2, 2 * ln2], [3.0, 3.0, 3.0]])
    m = AffinityMatrix.from_scores(scores, ('a', 'b'), S)
    np.testing.assert_allclose(m.values[0], [1 / 7, 2 / 7, 4 / 7])
    np.testing.assert_allclose(m.values[1], [1 / 3] * 3)
    # T = 2 halves the log-ratios: weights 1 : sqrt2 : 2
    m2 = AffinityMatrix.from_scores(scores, ('a', 'b'), S, temperature=2.0)
    w = np.array([1, math.sqrt(2), 2])
    np.testing.assert_allclose(m2.values[0], w / w.sum())
    # top-2 keeps 2/7 and 4/7 -> 1/3, 2/3
    m3 = AffinityMatrix.from_scores(scores, ('a', 'b'), S, top_k=2)
    np.testing.assert_allclose(m3.values[0], [0, 1 / 3, 2 / 3])
    # ties: exactly k kept, lower index first
    np.testing.assert_allclose(m3.values[1], [0.5, 0.5, 0])
    # uniform mix: (1 - 0.3) * row + 0.1
    m4 = AffinityMatrix.from_scores(scores, ('a', 'b'), S, top_k=1, uniform_mix=0.3)
    np.testing.assert_allclose(m4.values[0], [0.1, 0.1, 0.8])
    assert m4.meta['top_k'] == 1 and m4.meta['uniform_mix'] == 0.3


def test_missing_scores_follow_the_zero_row_rule_with_a_warning():
    scores = np.array([[0.0, 1.0, 2.0], [np.nan] * 3])
    with pytest.warns(UserWarning, match=r"\['lava'\].*uniform"):
        m = AffinityMatrix.from_scores(scores, ('lawn', 'lava'), S, top_k=1)
    np.testing.assert_allclose(m.values[1], [1 / 3] * 3)  # top-k does not apply to fallbacks
    assert m.meta['fallback_classes'] == ['lava']
    with pytest.raises(ValueError, match=r"\['lava'\].*never saw"):
        AffinityMatrix.from_scores(scores, ('lawn', 'lava'), S, zero_row='error')
    with pytest.raises(ValueError, match='partly NaN'):
        rows_from_scores([[0.0, np.nan, 1.0]])


def test_counts_zero_row_never_divides_by_zero():
    counts = np.array([[3, 1, 0], [0, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        with np.errstate(all='raise'), pytest.warns(UserWarning, match="'ice'"):
            rows, fallen = rows_from_counts(counts, row_names=['lawn', 'ice'],
                                            return_fallback=True)
    np.testing.assert_allclose(rows, [[0.75, 0.25, 0], [1 / 3] * 3])
    assert fallen == ['ice']
    with pytest.raises(ValueError, match='negative'):
        rows_from_counts([[1, -1, 0]])


def test_from_counts_builds_a_valid_matrix():
    m = AffinityMatrix.from_counts([[2, 2, 0], [0, 0, 5], [1, 0, 0]], T, S, uniform_mix=0.3)
    np.testing.assert_allclose(m.values[0], [0.45, 0.45, 0.1])
    np.testing.assert_allclose(m.values[1], [0.1, 0.1, 0.8])


# ---------------------------------------------------------------- files
@pytest.mark.parametrize('which', ['stem', '.json', '.npz'])
def test_save_load_roundtrip_is_exact(tmp_path, which):
    m = AffinityMatrix(np.random.default_rng(0).dirichlet(np.ones(3), size=3), T, S,
                       meta={'estimator': 'x', 'temperature': 0.5})
    json_path, npz_path = m.save(tmp_path / 'sub' / 'aff')
    assert json_path.name == 'aff.json' and npz_path.name == 'aff.npz'
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == ['aff.json', 'aff.npz']
    arg = tmp_path / 'sub' / 'aff' if which == 'stem' else tmp_path / 'sub' / f'aff{which}'
    back = AffinityMatrix.load(arg)
    np.testing.assert_array_equal(back.values, m.values)
    assert back.target_classes == T and back.source_classes == S
    assert back.meta == m.meta
    d = json.loads(json_path.read_text())
    assert d['target_classes'] == list(T) and len(d['values']) == 3  # readable rows
    assert '[1.0, 0.0, 0.0]' in make().save(tmp_path / 'b')[0].read_text()


def test_load_from_npz_alone_warns_and_missing_files(tmp_path):
    make().save(tmp_path / 'a')
    (tmp_path / 'a.json').unlink()
    with pytest.warns(UserWarning, match='a.json is missing.*derived copy'):
        back = AffinityMatrix.load(tmp_path / 'a')
    assert back.meta == make().meta and back.target_classes == T
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        AffinityMatrix.load(tmp_path / 'nothere')


def test_json_is_authoritative_and_a_stale_npz_is_never_trusted(tmp_path):
    """The NPZ is stamped with the sha256 of the JSON it was derived from: loading (even by the
    .npz name) reads the JSON, and an NPZ that does not match it only gets a warning."""
    json_path, npz_path = make().save(tmp_path / 'a')
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')                 # a fresh pair loads without a warning
        np.testing.assert_array_equal(AffinityMatrix.load(npz_path).values, A)
    # a hand edit of the JSON: its rows are used, the older NPZ is stale
    d = json.loads(json_path.read_text())
    d['values'] = A[[1, 0, 2]].tolist()
    json_path.write_text(json.dumps(d))
    with pytest.warns(UserWarning, match='a.npz does not match .*a.json.*JSON is authoritative'):
        back = AffinityMatrix.load(npz_path)
    np.testing.assert_array_equal(back.values, A[[1, 0, 2]])
    # a foreign NPZ (other classes, no stamp) beside the JSON: ignored likewise
    np.savez(npz_path, values=A, target_classes=np.array(T),
             source_classes=np.array(('grass', 'water', 'rock')))
    with pytest.warns(UserWarning, match='does not match'):
        assert AffinityMatrix.load(tmp_path / 'a').source_classes == S
    # re-saving refreshes the pair
    back.save(tmp_path / 'a')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        AffinityMatrix.load(tmp_path / 'a')


def test_heatmap_delegates_to_the_visualization_package(tmp_path, monkeypatch):
    import catgen.visualization.affinity_heatmap as vis
    seen = []
    monkeypatch.setattr(vis, 'plot_affinity_heatmap',
                        lambda m, path, *args: seen.append((m, path, args)) or path)
    m = make()
    assert m.heatmap(tmp_path / 'h.png', top_k_annotate=2) == tmp_path / 'h.png'
    assert seen == [(m, tmp_path / 'h.png', (2, None, 'viridis', 100))]


# ---------------------------------------------------------------- reading / applying
def test_top_k_is_sorted_and_named():
    top = make().top_k(2)
    assert top['lawn'] == [('grass', 1.0), ('water', 0.0)]
    assert top['shore'] == [('water', 0.5), ('sand', 0.5)]  # tie: lower source index first
    assert make().format_top_k(1)[2] == 'shore -> water (0.50)'


def test_channel_matrix_maps_dontcare_to_dontcare():
    c = make().to_channel_matrix()
    assert c.shape == (4, 4)
    np.testing.assert_array_equal(c[0], [1, 0, 0, 0])
    np.testing.assert_array_equal(c[:, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(c[1:, 1:], A)
    np.testing.assert_array_equal(make().to_channel_matrix(dontcare=False), A)


def test_apply_onehot_and_apply_ids_agree_with_a_hand_computation():
    m = make()
    label = torch.tensor([[[0, 1], [2, 3]]])  # channel space: don't care, lawn, ocean, shore
    onehot = torch.nn.functional.one_hot(label, 4).permute(0, 3, 1, 2).float()
    ys = m.apply_onehot(onehot)
    assert ys.shape == (1, 4, 2, 2)
    expected = torch.tensor([[1., 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, .5, .5]])
    torch.testing.assert_close(ys[0].permute(1, 2, 0).reshape(4, 4), expected)
    torch.testing.assert_close(m.apply_ids(label), ys)
    # without the don't-care channel on both sides
    ys_real = m.apply_onehot(onehot[:, 1:])
    assert ys_real.shape == (1, 3, 2, 2)
    torch.testing.assert_close(ys_real, ys[:, 1:])
    torch.testing.assert_close(m.apply_ids(label, dontcare=False), ys[:, 1:])
    # soft inputs, dtype kept
    assert m.apply_onehot(onehot.double()).dtype == torch.float64


def test_apply_rejects_wrong_channels_and_ids():
    m = make()
    with pytest.raises(ValueError, match='expects 4 .* or 3'):
        m.apply_onehot(torch.zeros(1, 5, 2, 2))
    with pytest.raises(ValueError, match=r'\[0, 3\].*255 -> 0'):
        m.apply_ids(torch.tensor([[[0, 255]]]))
