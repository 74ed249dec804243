"""Affinity accuracy: how close an estimated affinity matrix is to a known true one.

A pure function (no torch, no mmengine) so that tools and tests can call it directly; an
MMEngine ``BaseMetric`` wrapper can call it on the run's matrix.

- Synonyms (true row one-hot): top-1 accuracy, the share of rows whose largest entry is the true
  source class.
- Mixtures (true row with several entries): mean L1 distance ``sum_s |pred - true|`` (0 = exact,
  2 = disjoint supports).
- Novel classes (no true row): not scored; their top-3 source classes are reported.
"""
import numpy as np

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
