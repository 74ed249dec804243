"""Affinity accuracy: how close an estimated affinity matrix is to a known true one.

:func:`affinity_accuracy` is a pure function (numpy only) that tools and tests call directly;
:class:`AffinityAccuracy` wraps it as an MMEngine ``BaseMetric`` (registered in
``catgen.registry.METRICS``) for configs.

- Synonyms (true row one-hot): top-1 accuracy, the share of rows whose largest entry is the true
  source class.
- Mixtures (true row with several entries): mean L1 distance ``sum_s |pred - true|`` (0 = exact,
  2 = disjoint supports).
- Novel classes (no true row): not scored; their top-3 source classes are reported.

It lives with the affinity estimators (not in ``catgen.evaluation``, which does not depend on
``catgen.affinity``); ``METRICS`` finds it through its ``catgen.affinity`` location.
"""
import numpy as np
from mmengine.evaluator import BaseMetric

from catgen.registry import METRICS

from .ground_truth_estimator import read_affinity_truth
from .matrix import AffinityMatrix

__all__ = ['affinity_accuracy', 'format_affinity_accuracy', 'AffinityAccuracy']

KINDS = ('synonym', 'mixture', 'novel')


def _dense_truth(row, source_classes, name):
    if isinstance(row, dict):
        unknown = [s for s in row if s not in source_classes]
        if unknown:
            raise ValueError(f'The true row of {name!r} names {unknown}, which are not source '
                             f'classes of the predicted matrix ({list(source_classes)}).')
        dense = np.zeros(len(source_classes))
        for s, w in row.items():
            dense[source_classes.index(s)] = float(w)
        return dense
    dense = np.asarray(row, dtype=np.float64)
    if dense.shape != (len(source_classes),):
        raise ValueError(f'The true row of {name!r} has shape {dense.shape}; expected '
                         f'({len(source_classes)},), one weight per source class.')
    return dense


def _kind_of(dense):
    if dense is None or not dense.any():
        return 'novel'
    return 'synonym' if np.count_nonzero(dense) == 1 else 'mixture'


def affinity_accuracy(pred, truth_rows, kinds=None, top_k_report=3):
    """Score a predicted matrix against true rows.

    Args:
        pred: an :class:`~catgen.affinity.AffinityMatrix` (or anything with ``values``,
            ``target_classes`` and ``source_classes``).
        truth_rows: ``{target: {source: weight}}`` or ``{target: float[N_s]}`` (columns in
            ``pred.source_classes`` order); novel classes may be absent or None.
        kinds: ``{target: 'synonym' | 'mixture' | 'novel'}``; a class missing from it (or
            ``kinds=None``) is classified from its true row (one-hot -> synonym, several
            entries -> mixture, none -> novel).
        top_k_report: how many source classes to report per row.

    Returns:
        dict with
        ``top1_synonyms`` (float in [0, 1], None if no synonym),
        ``l1_mixtures`` (float in [0, 2], None if no mixture),
        ``num_synonyms``, ``num_mixtures``,
        ``novel`` (list of ``{'class': name, 'top': [(source, weight), ...]}``),
        ``per_class`` (``{target: {'kind', 'correct' or 'l1', 'true', 'top'}}``).

    Raises:
        ValueError: a scored class is not a target class of ``pred`` or its row is malformed.
    """
    values = np.asarray(pred.values, dtype=np.float64)
    target = list(pred.target_classes)
    source = list(pred.source_classes)
    kinds = dict(kinds or {})
    names = list(dict.fromkeys([*kinds, *truth_rows]))
    missing = [n for n in names if n not in target]
    if missing:
        raise ValueError(f'Classes {missing} have a true row or kind but are not target classes '
                         f'of the predicted matrix ({target}). Estimate the matrix for the same '
                         f'target classes as the truth.')
    per_class, correct, l1s, novel = {}, [], [], []
    for name in names:
        row = truth_rows.get(name)
        dense = None if row is None else _dense_truth(row, source, name)
        kind = kinds.get(name) or _kind_of(dense)
        if kind not in KINDS:
            raise ValueError(f'Unknown kind {kind!r} for {name!r}; expected one of {KINDS}.')
        p = values[target.index(name)]
        order = np.argsort(-p, kind='stable')[:top_k_report]
        top = [(source[j], float(p[j])) for j in order]
        entry = {'kind': kind, 'top': top}
        if kind == 'novel':
            novel.append({'class': name, 'top': top})
        elif dense is None or not dense.any():
            raise ValueError(f'{name!r} is a {kind} but has no true row; give its row or mark it '
                             f"'novel'.")
        elif kind == 'synonym':
            true_src = source[int(np.argmax(dense))]
            entry.update(true=true_src, correct=bool(top[0][0] == true_src))
            correct.append(entry['correct'])
        else:
            entry.update(true={source[j]: float(dense[j]) for j in np.flatnonzero(dense)},
                         l1=float(np.abs(p - dense).sum()))
            l1s.append(entry['l1'])
        per_class[name] = entry
    return {
        'top1_synonyms': float(np.mean(correct)) if correct else None,
        'l1_mixtures': float(np.mean(l1s)) if l1s else None,
        'num_synonyms': len(correct),
        'num_mixtures': len(l1s),
        'novel': novel,
        'per_class': per_class,
    }


def format_affinity_accuracy(result):
    """Readable lines for a result of :func:`affinity_accuracy`."""
    lines = []
    t1, l1 = result['top1_synonyms'], result['l1_mixtures']
    lines.append(f'synonyms: top-1 accuracy {"n/a" if t1 is None else f"{100 * t1:.1f}%"} '
                 f'({result["num_synonyms"]} classes)')
    lines.append(f'mixtures: mean L1 to the true row {"n/a" if l1 is None else f"{l1:.3f}"} '
                 f'({result["num_mixtures"]} classes)')
    for name, e in result['per_class'].items():
        top = ', '.join(f'{s} ({w:.2f})' for s, w in e['top'])
        if e['kind'] == 'synonym':
            lines.append(f'  {name:<12} synonym of {e["true"]:<10} '
                         f'{"ok   " if e["correct"] else "WRONG"} top: {top}')
        elif e['kind'] == 'mixture':
            true = ' + '.join(f'{w:g} {s}' for s, w in e['true'].items())
            lines.append(f'  {name:<12} mixture {true}: L1 {e["l1"]:.3f}; top: {top}')
        else:
            lines.append(f'  {name:<12} novel (not scored); top: {top}')
    return lines


# --------------------------------------------------------------------------- MMEngine metric

def _as_matrix(obj):
    """An AffinityMatrix from a matrix, its ``to_json_dict()``, or a saved file / stem."""
    if obj is None or isinstance(obj, AffinityMatrix):
        return obj
    if isinstance(obj, dict):
        return AffinityMatrix(obj['values'], obj['target_classes'], obj['source_classes'],
                              obj.get('meta'))
    return AffinityMatrix.load(obj)


@METRICS.register_module()
class AffinityAccuracy(BaseMetric):
    """:func:`affinity_accuracy` as an MMEngine metric, for configs::

        val_evaluator = dict(type='AffinityAccuracy', matrix='work_dirs/affinity/affinity.json',
                             truth='data/synthscenes')

    The matrix is ``matrix`` (an :class:`~catgen.affinity.AffinityMatrix`, or a saved
    ``.json`` / ``.npz`` / stem), else the run's own: the ``affinity_matrix`` a model puts into
    its output data samples (a matrix, its ``to_json_dict()`` or a path; the last one seen is
    used). The truth is ``truth`` (a SynthScenes data root, its classes.json, ``'builtin'``, or
    the parsed dict), else the evaluated data set's ``metainfo['affinity']`` / ``['kinds']``
    (SynthScenesDataset's target domain has them).

    Metrics (prefix ``affinity``): ``top1_synonyms``, ``l1_mixtures`` (NaN when there is no such
    class), ``num_synonyms``, ``num_mixtures``; the per-class lines (novel classes' top-3
    included) go to the log.
    """

    default_prefix = 'affinity'

    def __init__(self, matrix=None, truth=None, top_k_report=3, prefix=None,
                 collect_device='cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.matrix = matrix
        self.truth = truth
        self.top_k_report = top_k_report

    def process(self, data_batch, data_samples):
        for ds in data_samples:
            get = ds.get if isinstance(ds, dict) else (lambda k, d=None: getattr(ds, k, d))
            m = get('affinity_matrix', None)
            if m is not None and not isinstance(m, (str, dict)):
                m = m.to_json_dict() if hasattr(m, 'to_json_dict') else m
            self.results.append(m)

    def _truth(self):
        src = self.truth
        if src == 'builtin':
            from catgen.datasets.synthscenes import recipes
            src = recipes.classes_json({})
        if src is not None:
            t = read_affinity_truth(src)
            return t['rows'], t['kinds']
        meta = self.dataset_meta or {}
        if meta.get('affinity') is None:
            raise ValueError('AffinityAccuracy has no ground truth: pass truth=<SynthScenes data '
                             'root or classes.json> (or \'builtin\'), or evaluate on a data set '
                             'whose metainfo has "affinity" (SynthScenes target).')
        rows = {k: v for k, v in meta['affinity'].items() if v}
        return rows, dict(meta.get('kinds') or {})

    def compute_metrics(self, results):
        from mmengine.logging import print_log
        matrix = self.matrix
        if matrix is None:
            found = [r for r in results if r is not None]
            if not found:
                raise ValueError('AffinityAccuracy has no matrix: pass matrix=<saved matrix '
                                 '.json/.npz> in its config, or let the model put '
                                 '"affinity_matrix" into its output data samples.')
            matrix = found[-1]
        mat = _as_matrix(matrix)
        rows, kinds = self._truth()
        rows = {t: r for t, r in rows.items() if t in mat.target_classes}
        kinds = {t: k for t, k in kinds.items() if t in mat.target_classes}
        result = affinity_accuracy(mat, rows, kinds, top_k_report=self.top_k_report)
        for line in format_affinity_accuracy(result):
            print_log(line, logger='current')
        nan = float('nan')
        return {'top1_synonyms': nan if result['top1_synonyms'] is None
                else result['top1_synonyms'],
                'l1_mixtures': nan if result['l1_mixtures'] is None else result['l1_mixtures'],
                'num_synonyms': result['num_synonyms'],
                'num_mixtures': result['num_mixtures']}
