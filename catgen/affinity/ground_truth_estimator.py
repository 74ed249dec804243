"""GroundTruthAffinity: the true rows of a synthetic data set (SynthScenes' classes.json).

SynthScenes knows its affinity by construction. ``classes.json`` (beside the data) holds::

    {"source": {"classes": [...], ...},
     "target": {"classes": [...], ...,
                "kinds": {"lawn": "synonym", "meadow": "mixture", "lava": "novel", ...},
                "affinity": {"lawn": {"grass": 1.0}, "meadow": {"grass": 0.7, "flower": 0.3}}}}

Synonyms have one-hot rows, mixtures p / 1-p, novel classes none: they get the zero-row rule
(uniform with a warning, or an error). This estimator is the upper bound that others are scored
against, and lets a CAT run use the true matrix.
"""
import json
from pathlib import Path

import numpy as np

from catgen.registry import AFFINITY_ESTIMATORS

from .base_estimator import BaseAffinityEstimator

KINDS = ('synonym', 'mixture', 'novel')


def _classes_json_path(path):
    path = Path(path)
    if path.is_dir():
        path = path / 'classes.json'
    if not path.is_file():
        raise FileNotFoundError(
            f'No classes.json at {path}. Pass the SynthScenes data root (the folder that holds '
            f'classes.json, images/ and annotations/) or the classes.json file itself; make the '
            f'data with tools/prepare_synthscenes.py.')
    return path


def infer_kind(row):
    """'novel' for no row, 'synonym' for a one-hot row, else 'mixture'."""
    if not row:
        return 'novel'
    weights = [w for w in row.values() if w > 0]
    return 'synonym' if len(weights) == 1 else 'mixture'


def read_affinity_truth(path):
    """Read the ground truth from a SynthScenes root or its classes.json.

    Args:
        path: the data root, the classes.json file, or the already parsed classes.json dict
            (e.g. ``catgen.datasets.synthscenes.recipes.classes_json({})``, no data needed).

    Returns:
        dict with ``target_classes`` (list[str]), ``source_classes`` (list[str]), ``rows``
        (``{target: {source: weight}}``, only the classes that have a true row) and ``kinds``
        (``{target: 'synonym' | 'mixture' | 'novel'}`` for every target class; inferred from the
        rows where classes.json has no ``kinds``).

    Raises:
        FileNotFoundError: no classes.json there.
        ValueError: the file lacks a section, or a row names an unknown class or does not sum to 1.
    """
    if isinstance(path, dict):
        data, path = path, '<classes.json dict>'
    else:
        path = _classes_json_path(path)
        data = json.loads(path.read_text())
    for section in ('source', 'target'):
        if not isinstance(data.get(section), dict) or not data[section].get('classes'):
            raise ValueError(f'{path} has no "{section}" section with a "classes" list; it is not '
                             f'a SynthScenes classes.json.')
    source = [str(c) for c in data['source']['classes']]
    target = [str(c) for c in data['target']['classes']]
    raw = data['target'].get('affinity')
    if raw is None:
        raise ValueError(f'{path} has no target "affinity" rows; the ground truth is unknown for '
                         f'this data set.')
    rows = {}
    for name, row in raw.items():
        if name not in target:
            raise ValueError(f'{path}: affinity row for {name!r}, which is not a target class '
                             f'({target}).')
        if row is None:
            continue
        if isinstance(row, list):  # a dense row over source classes
            if len(row) != len(source):
                raise ValueError(f'{path}: the affinity row of {name!r} has {len(row)} entries '
                                 f'for {len(source)} source classes.')
            row = {s: float(w) for s, w in zip(source, row) if w}
        unknown = [s for s in row if s not in source]
        if unknown:
            raise ValueError(f'{path}: the affinity row of {name!r} names {unknown}, which are '
                             f'not source classes ({source}).')
        total = sum(float(w) for w in row.values())
        if row and abs(total - 1.0) > 1e-6:
            raise ValueError(f'{path}: the affinity row of {name!r} sums to {total}, not 1.')
        if row:
            rows[name] = {s: float(w) for s, w in row.items()}
    kinds = dict(data['target'].get('kinds') or {})
    for name in target:
        kinds.setdefault(name, infer_kind(rows.get(name)))
    bad = {k: v for k, v in kinds.items() if v not in KINDS}
    if bad:
        raise ValueError(f'{path}: unknown class kinds {bad}; expected one of {KINDS}.')
    return dict(target_classes=target, source_classes=source, rows=rows, kinds=kinds,
                path=str(path))


@AFFINITY_ESTIMATORS.register_module()
class GroundTruthAffinity(BaseAffinityEstimator):
    """The true affinity rows from SynthScenes' classes.json.

    Args:
        classes_json: the SynthScenes data root, its classes.json, or the parsed dict; may
            instead be passed to :meth:`estimate` as ``synthscenes=...`` or ``classes_json=...``.
        top_k, uniform_mix, zero_row: post-processing (see :class:`BaseAffinityEstimator`);
            the defaults give the truth itself, with uniform rows for novel classes.
    """

    name = 'GroundTruthAffinity'

    def __init__(self, classes_json=None, top_k=None, uniform_mix=0.0, zero_row='uniform'):
        super().__init__(top_k=top_k, uniform_mix=uniform_mix, zero_row=zero_row,
                         use_cache=False)
        self.classes_json = classes_json

    def settings(self):
        src = self.classes_json if isinstance(self.classes_json, (str, type(None))) else (
            '<dict>' if isinstance(self.classes_json, dict) else str(self.classes_json))
        return dict(classes_json=src, top_k=self.top_k, uniform_mix=self.uniform_mix,
                    zero_row=self.zero_row)

    def estimate(self, target_classes=None, source_classes=None, **ctx):
        """The true matrix. Class lists default to those in classes.json; when given, they pick
        and order the rows (any target subset) and must name the same source classes.

        Args:
            target_classes: N_t target names or None.
            source_classes: N_s source names or None.
            **ctx: ``synthscenes`` or ``classes_json`` (path) if not given at construction.

        Returns:
            AffinityMatrix; ``meta['kinds']`` holds the kind of each target class.
        """
        path = self.classes_json or ctx.get('classes_json') or ctx.get('synthscenes')
        if path is None:
            raise ValueError('GroundTruthAffinity needs the SynthScenes classes.json: pass '
                             'classes_json=<data root or file> to the estimator (or to estimate).')
        truth = read_affinity_truth(path)
        target = list(target_classes) if target_classes is not None else truth['target_classes']
        source = list(source_classes) if source_classes is not None else truth['source_classes']
        unknown_t = [t for t in target if t not in truth['target_classes']]
        if unknown_t:
            raise ValueError(f'Target classes {unknown_t} are not in {truth["path"]} (target '
                             f'classes there: {truth["target_classes"]}).')
        if sorted(source) != sorted(truth['source_classes']):
            missing = sorted(set(truth['source_classes']) - set(source))
            extra = sorted(set(source) - set(truth['source_classes']))
            raise ValueError(f'source_classes must be the source classes of {truth["path"]}: '
                             f'missing {missing}, unexpected {extra}.')
        counts = np.zeros((len(target), len(source)))
        for i, t in enumerate(target):
            for s, w in truth['rows'].get(t, {}).items():
                counts[i, source.index(s)] = w
        return self._from_counts(counts, target, source, classes_json=truth['path'],
                                 kinds={t: truth['kinds'][t] for t in target})
