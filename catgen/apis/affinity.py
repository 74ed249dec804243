"""estimate_affinity: build an affinity estimator, run it, save the matrix, score it.

What ``tools/estimate_affinity.py`` does, as one function for Python callers::

    from catgen.apis.affinity import estimate_affinity
    result = estimate_affinity(dict(type='TextAffinity'), synthscenes='builtin',
                               out_dir='work_dirs/affinity/text')
    result.matrix.format_top_k(3); result.paths['json']; result.accuracy['top1_synonyms']

Every estimator is treated alike: it is built from its config in
``catgen.registry.AFFINITY_ESTIMATORS``, gets the run options through
:meth:`~catgen.affinity.BaseAffinityEstimator.set_run_options` (a combined estimator passes
them on), and is run with ``estimate(target, source, work_dir=out_dir, synthscenes=<truth>)``
(estimators take from the context what they need, e.g. the ground-truth estimator the
classes.json).
"""
import json
import os.path as osp
from dataclasses import dataclass, field

__all__ = ['estimate_affinity', 'AffinityResult', 'resolve_truth']


@dataclass
class AffinityResult:
    """What :func:`estimate_affinity` returns.

    Attributes:
        matrix: the :class:`~catgen.affinity.AffinityMatrix` (N_t x N_s).
        paths: ``{'json', 'npz', 'png'[, 'accuracy']}`` -> str paths written (empty without
            ``out_dir``).
        accuracy: the :func:`~catgen.affinity.affinity_accuracy` result against the truth, or
            None (no truth, or the truth names other source classes).
        estimator: the built estimator.
    """
    matrix: object
    paths: dict = field(default_factory=dict)
    accuracy: dict = None
    estimator: object = None


def resolve_truth(synthscenes):
    """``(truth source, truth dict)`` of a SynthScenes spec: a data root, a classes.json path,
    ``'builtin'`` (the built-in class lists, no data needed), a parsed classes.json dict, or
    None (-> ``(None, None)``). See :func:`catgen.affinity.read_affinity_truth`."""
    if synthscenes is None:
        return None, None
    from catgen.affinity import read_affinity_truth
    src = synthscenes
    if src == 'builtin':
        from catgen.datasets.synthscenes import recipes
        src = recipes.classes_json({})
    return src, read_affinity_truth(src)


def estimate_affinity(estimator, target_classes=None, source_classes=None, synthscenes=None,
                      out_dir=None, name='affinity', progress=None, cache_dir=None,
                      use_cache=None, top_k_annotate=3):
    """Estimate a class affinity matrix; save it (JSON + NPZ + heatmap) and score it.

    Args:
        estimator: an estimator config ``dict(type='TextAffinity', ...)`` or a built one.
        target_classes: the N_t target class names; default: the truth's.
        source_classes: the N_s source class names; default: the truth's.
        synthscenes: where the class names and the true affinity come from (see
            :func:`resolve_truth`); also handed to the estimator as ``synthscenes=``.
        out_dir: where ``<name>.json``, ``<name>.npz``, ``<name>.png`` and
            ``<name>_accuracy.json`` go, and the estimator's ``work_dir`` (its default cache
            is ``out_dir/.cache/affinity``); None writes nothing.
        name: the file stem of the outputs.
        progress, cache_dir, use_cache: run options for the estimator (None leaves its
            config's); see :meth:`~catgen.affinity.BaseAffinityEstimator.set_run_options`.
        top_k_annotate: weights written per row in the heatmap.

    Returns:
        :class:`AffinityResult`.

    Raises:
        ValueError: no class names (pass them or ``synthscenes``).
    """
    from catgen.registry import AFFINITY_ESTIMATORS
    truth_src, truth = resolve_truth(synthscenes)
    target = target_classes or (truth and truth['target_classes'])
    source = source_classes or (truth and truth['source_classes'])
    if not target or not source:
        raise ValueError('No class names: pass target_classes and source_classes, or '
                         'synthscenes=<SynthScenes data root, classes.json or \'builtin\'>.')
    est = AFFINITY_ESTIMATORS.build(dict(estimator)) if isinstance(estimator, dict) \
        else estimator
    est.set_run_options(progress=progress, cache_dir=cache_dir, use_cache=use_cache)
    ctx = {} if truth_src is None else {'synthscenes': truth_src}
    mat = est.estimate(list(target), list(source), work_dir=out_dir, **ctx)
    result = AffinityResult(matrix=mat, estimator=est)
    if out_dir is not None:
        stem = osp.join(out_dir, name)
        json_path, npz_path = mat.save(stem)
        png = mat.heatmap(stem + '.png', top_k_annotate=top_k_annotate)
        result.paths = {'json': str(json_path), 'npz': str(npz_path), 'png': str(png)}
    if truth is not None and set(mat.source_classes) == set(truth['source_classes']):
        from catgen.affinity import affinity_accuracy
        kinds = {t: k for t, k in truth['kinds'].items() if t in mat.target_classes}
        rows = {t: r for t, r in truth['rows'].items() if t in mat.target_classes}
        result.accuracy = affinity_accuracy(mat, rows, kinds)
        if out_dir is not None:
            from catgen.utils.io import write_text_atomic
            acc_path = osp.join(out_dir, f'{name}_accuracy.json')
            write_text_atomic(acc_path, json.dumps(result.accuracy, indent=1) + '\n')
            result.paths['accuracy'] = acc_path
    return result
