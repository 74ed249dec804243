"""The class affinity matrix between a target and a source label space.

``A`` is ``N_t x N_s`` over the REAL classes of both sides (the don't-care channel is not part of
it): row ``t`` is a probability distribution over source classes saying what target class ``t``
looks like in the source label space. A target one-hot map ``y_t`` becomes a soft source map
``y_s = A^T y_t`` at every pixel (see :meth:`AffinityMatrix.apply_onehot`). In channel space (see
docs/conventions.md) don't-care (channel 0) maps to don't-care: :meth:`to_channel_matrix`.

On disk a matrix has ONE authoritative file, ``<stem>.json`` (readable: names, estimator
settings, rows as nested lists; Python's float repr makes the values round-trip exactly).
``<stem>.npz`` beside it is a derived copy for numpy users, stamped with the sha256 of the JSON
text it was made from: :meth:`AffinityMatrix.load` reads the JSON whenever it exists and never
trusts an NPZ whose stamp does not match it (a hand-edited JSON, a stale copy); an NPZ alone is
read with a warning. The heatmap plot is :func:`catgen.visualization.plot_affinity_heatmap`.
"""
import hashlib
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np

from catgen.utils.io import atomic_write

from .postprocess import rows_from_counts, rows_from_scores

FORMAT_NAME = 'catgen.AffinityMatrix'
FORMAT_VERSION = 1
ROW_SUM_TOL = 1e-6


def _names(names, what):
    if isinstance(names, str):
        raise TypeError(f'{what} must be a sequence of class names, not the single string '
                        f'{names!r}.')
    names = tuple(str(n) for n in names)
    return names


def _name_diff(expected, got):
    """A readable description of how two name lists differ."""
    exp, got = list(expected), list(got)
    missing = [n for n in exp if n not in got]
    extra = [n for n in got if n not in exp]
    parts = []
    if missing:
        parts.append(f'missing {missing}')
    if extra:
        parts.append(f'unexpected {extra}')
    if not parts and len(exp) != len(got):
        parts.append(f'{len(got)} names for {len(exp)} expected (duplicates?)')
    if not parts:
        moved = [(i, e, g) for i, (e, g) in enumerate(zip(exp, got)) if e != g]
        parts.append('same names in another order; first differences (position, expected, got): '
                     f'{moved[:5]}')
    return '; '.join(parts)


def _dumps(obj, indent=0):
    """JSON with one line per list of scalars (a matrix reads as one row per line)."""
    pad, inner = ' ' * indent, ' ' * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return '{}'
        items = [f'{inner}{json.dumps(str(k))}: {_dumps(v, indent + 1)}' for k, v in obj.items()]
        return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return json.dumps(list(obj))
        items = [inner + _dumps(v, indent + 1) for v in obj]
        return '[\n' + ',\n'.join(items) + '\n' + pad + ']'
    return json.dumps(obj)


def _strip_stem(path):
    path = Path(path)
    if path.suffix in ('.json', '.npz'):
        return path.with_suffix('')
    return path


def _sidecar(stem, suffix):
    return stem.with_name(stem.name + suffix)


def _sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def _npz_stamp(npz_path):
    """The ``json_sha256`` an NPZ was stamped with, or None (unreadable, or an old NPZ)."""
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            return str(z['json_sha256']) if 'json_sha256' in z.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


class AffinityMatrix:
    """An ``N_t x N_s`` row-stochastic matrix with the class names of both sides.

    Args:
        values: float[N_t, N_s]; row ``t`` is a distribution over source classes.
        target_classes: the N_t target class names (real classes, no don't-care).
        source_classes: the N_s source class names (real classes, no don't-care).
        meta: json-able dict of the estimator settings that made it (``'estimator'`` names the
            estimator; ``'fallback_classes'`` lists rows that got the zero-row rule).
        validate: run :meth:`validate` now (default True).

    Attributes:
        values: float64[N_t, N_s] (a private copy).
        target_classes, source_classes: tuple[str].
        meta: dict.
    """

    def __init__(self, values, target_classes, source_classes, meta=None, validate=True):
        self.values = np.array(values, dtype=np.float64)
        self.target_classes = _names(target_classes, 'target_classes')
        self.source_classes = _names(source_classes, 'source_classes')
        self.meta = dict(meta or {})
        if validate:
            self.validate()

    # ------------------------------------------------------------------ basics
    @property
    def num_target(self):
        return len(self.target_classes)

    @property
    def num_source(self):
        return len(self.source_classes)

    @property
    def shape(self):
        return self.values.shape

    def __repr__(self):
        return (f'AffinityMatrix({self.num_target} target x {self.num_source} source classes, '
                f'estimator={self.meta.get("estimator")!r})')

    def row(self, target_class):
        """float64[N_s]: the row of one target class, by name."""
        try:
            return self.values[self.target_classes.index(target_class)].copy()
        except ValueError:
            raise KeyError(f'{target_class!r} is not a target class of this matrix; its target '
                           f'classes are {list(self.target_classes)}.') from None

    def rows_dict(self):
        """``{target: {source: weight}}`` with every entry (for JSON and metrics)."""
        return {t: {s: float(w) for s, w in zip(self.source_classes, r)}
                for t, r in zip(self.target_classes, self.values)}

    # ------------------------------------------------------------------ checks
    def validate(self):
        """Check shape against names, finiteness, non-negativity and row sums (1 within 1e-6).

        Returns:
            self

        Raises:
            ValueError: what was expected, what came, and what to do.
        """
        v = self.values
        for what, names in (('target', self.target_classes), ('source', self.source_classes)):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f'Duplicate {what} class names {dup}; every class needs a unique '
                                 f'name.')
        expected = (self.num_target, self.num_source)
        if v.ndim != 2 or v.shape != expected:
            raise ValueError(
                f'Affinity values have shape {v.shape} but the names give {expected} '
                f'({self.num_target} target x {self.num_source} source classes). Rows are target '
                f'classes, columns source classes, both without the don\'t-care class; transpose '
                f'or drop the don\'t-care row/column.')
        if not np.isfinite(v).all():
            bad = [self.target_classes[i] for i in np.flatnonzero(~np.isfinite(v).all(axis=1))]
            raise ValueError(f'Affinity rows of {bad} contain NaN or inf; every entry must be '
                             f'finite. Rebuild the rows with rows_from_scores/rows_from_counts.')
        if (v < 0).any():
            bad = [self.target_classes[i] for i in np.flatnonzero((v < 0).any(axis=1))]
            raise ValueError(f'Affinity rows of {bad} have negative entries (min {v.min():.3g}); '
                             f'rows must be probability distributions. Use a softmax on scores '
                             f'(AffinityMatrix.from_scores).')
        sums = v.sum(axis=1)
        off = np.abs(sums - 1.0) > ROW_SUM_TOL
        if off.any():
            bad = {self.target_classes[i]: float(sums[i]) for i in np.flatnonzero(off)}
            raise ValueError(f'Affinity rows must sum to 1 (within {ROW_SUM_TOL}); these do not '
                             f'(class: sum): {bad}. Normalise them, e.g. with '
                             f'AffinityMatrix.from_counts or from_scores.')
        return self

    @staticmethod
    def _match(what, mine, expected):
        expected = _names(expected, f'{what}_classes')
        if tuple(mine) == expected:
            return
        # Data sets and models list the don't-care name first (classes[0]); accept that.
        if len(expected) == len(mine) + 1 and expected[1:] == tuple(mine):
            return
        raise ValueError(
            f'The affinity matrix\'s {what} classes do not match the expected ones: '
            f'{_name_diff(expected, mine)}. Expected {len(expected)} names {list(expected)}, the '
            f'matrix has {len(mine)}: {list(mine)}. Re-estimate the matrix for these classes, or '
            f'reorder it with AffinityMatrix.reorder(...) if only the order differs.')

    def check_names(self, target_classes=None, source_classes=None):
        """Check that the names match a data set's (target) or a model's (source) classes.

        A list that starts with the don't-care name (``metainfo['classes']``, N + 1 names) is
        accepted when the rest matches. None skips that side.

        Returns:
            self

        Raises:
            ValueError: listing missing, unexpected or reordered names.
        """
        if target_classes is not None:
            self._match('target', self.target_classes, target_classes)
        if source_classes is not None:
            self._match('source', self.source_classes, source_classes)
        return self

    def reorder(self, target_classes=None, source_classes=None):
        """A new matrix with rows/columns in the given order.

        ``target_classes`` may be a subset of the targets (rows are selected); ``source_classes``
        must be a permutation of the sources (rows must keep summing to 1).
        """
        t = self.target_classes if target_classes is None else _names(target_classes, 'target')
        s = self.source_classes if source_classes is None else _names(source_classes, 'source')
        missing_t = [n for n in t if n not in self.target_classes]
        if missing_t:
            raise ValueError(f'Target classes {missing_t} are not in the matrix '
                             f'({list(self.target_classes)}).')
        if sorted(s) != sorted(self.source_classes):
            raise ValueError('source_classes must be a permutation of the matrix\'s source '
                             f'classes: {_name_diff(self.source_classes, s)}.')
        ti = [self.target_classes.index(n) for n in t]
        si = [self.source_classes.index(n) for n in s]
        return AffinityMatrix(self.values[np.ix_(ti, si)], t, s, dict(self.meta))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_scores(cls, scores, target_classes, source_classes, temperature=1.0, top_k=None,
                    uniform_mix=0.0, zero_row='uniform', meta=None):
        """Build from similarity scores: softmax(S / T) -> top-k -> uniform mix.

        Args:
            scores: float[N_t, N_s]; a row of all NaN marks a target class with no score, which
                follows the zero-row rule (``zero_row``: ``'uniform'`` or ``'error'``; see
                :mod:`catgen.affinity.postprocess`).
            temperature, top_k, uniform_mix: see :func:`rows_from_scores`.
            meta: estimator settings; the post-processing settings are added to it.
        """
        rows, fallen = rows_from_scores(scores, temperature=temperature, top_k=top_k,
                                        uniform_mix=uniform_mix, row_names=list(target_classes),
                                        zero_row=zero_row, return_fallback=True)
        meta = dict(meta or {})
        meta.update(temperature=float(temperature), top_k=top_k, uniform_mix=float(uniform_mix),
                    zero_row=zero_row, fallback_classes=fallen)
        return cls(rows, target_classes, source_classes, meta)

    @classmethod
    def from_counts(cls, counts, target_classes, source_classes, top_k=None, uniform_mix=0.0,
                    zero_row='uniform', meta=None):
        """Build from histograms: counts / row sum -> top-k -> uniform mix; an all-zero row
        follows the zero-row rule (see :func:`rows_from_counts`)."""
        rows, fallen = rows_from_counts(counts, top_k=top_k, uniform_mix=uniform_mix,
                                        row_names=list(target_classes), zero_row=zero_row,
                                        return_fallback=True)
        meta = dict(meta or {})
        meta.update(top_k=top_k, uniform_mix=float(uniform_mix), zero_row=zero_row,
                    fallback_classes=fallen)
        return cls(rows, target_classes, source_classes, meta)

    # ------------------------------------------------------------------ files
    def to_json_dict(self):
        return {
            'format': FORMAT_NAME,
            'version': FORMAT_VERSION,
            'target_classes': list(self.target_classes),
            'source_classes': list(self.source_classes),
            'meta': self.meta,
            # One row per target class, columns in source_classes order.
            'values': [[float(w) for w in r] for r in self.values],
        }

    def save(self, path_stem):
        """Write ``<stem>.json`` (authoritative) and its derived ``<stem>.npz``, atomically.

        The old NPZ is removed first, then the JSON is renamed into place, then the new NPZ
        (stamped with the JSON's sha256) follows: a kill at any moment leaves the new JSON, or
        the old one alone, or the old pair; :meth:`load` never trusts an NPZ that does not
        match the JSON beside it.

        Args:
            path_stem: the path without suffix (a ``.json`` or ``.npz`` suffix is stripped).

        Returns:
            (Path, Path): the JSON and NPZ paths.
        """
        stem = _strip_stem(path_stem)
        json_path, npz_path = _sidecar(stem, '.json'), _sidecar(stem, '.npz')
        try:
            text = _dumps(self.to_json_dict()) + '\n'
        except TypeError as err:
            raise TypeError(f'AffinityMatrix.meta must be json-able to be saved ({err}); store '
                            f'paths as str and settings as plain numbers/lists/dicts.') from err
        with atomic_write(npz_path) as tmp_npz:
            np.savez(tmp_npz, values=self.values,
                     target_classes=np.array(self.target_classes, dtype=np.str_),
                     source_classes=np.array(self.source_classes, dtype=np.str_),
                     meta_json=np.array(json.dumps(self.meta)),
                     json_sha256=np.array(_sha256(text)))
            with atomic_write(json_path) as tmp_json:
                Path(tmp_json).write_text(text)
                npz_path.unlink(missing_ok=True)  # the old NPZ must not outlive the old JSON
            # here the new JSON is in place (alone); the new NPZ follows on leaving the block
        return json_path, npz_path

    @classmethod
    def load(cls, path):
        """Load a matrix saved by :meth:`save`.

        Args:
            path: ``<stem>.json``, ``<stem>.npz`` or ``<stem>``. The JSON is read whenever it
                exists (the NPZ is then ignored; a stale one gets a warning); the NPZ alone is
                read with a warning.

        Raises:
            FileNotFoundError: neither file exists.
            ValueError: the file is not a valid affinity matrix (says what is wrong and what
                to do).
        """
        stem = _strip_stem(path)
        json_path, npz_path = _sidecar(stem, '.json'), _sidecar(stem, '.npz')
        if json_path.is_file():
            mat, text = cls._read_json(json_path)
            if npz_path.is_file() and _npz_stamp(npz_path) != _sha256(text):
                warnings.warn(f'{npz_path} does not match {json_path} (the JSON was edited or '
                              f'the NPZ is stale); the JSON is authoritative and was used. '
                              f'Re-save the matrix to refresh the NPZ, or delete it.',
                              UserWarning, stacklevel=2)
            source = json_path
        elif npz_path.is_file():
            warnings.warn(f'{json_path} is missing: reading the derived copy {npz_path}. The JSON '
                          f'is the authoritative format; re-save the matrix to restore it.',
                          UserWarning, stacklevel=2)
            mat = cls._read_npz(npz_path)
            source = npz_path
        else:
            raise FileNotFoundError(f'No affinity matrix at {path}: expected {json_path} (or '
                                    f'its derived copy {npz_path}), written by '
                                    f'AffinityMatrix.save or tools/estimate_affinity.py. '
                                    f'Estimate one with tools/estimate_affinity.py --out DIR, '
                                    f'or fix the path.')
        try:
            mat.validate()
        except ValueError as err:
            raise ValueError(f'Affinity file {source}: {err} Fix the file, or re-estimate the '
                             f'matrix with tools/estimate_affinity.py.') from err
        return mat

    @classmethod
    def _read_json(cls, json_path):
        """``(matrix, not validated; the file's text)``."""
        redo = 'Re-save the matrix, or re-estimate it with tools/estimate_affinity.py.'
        text = json_path.read_text()
        try:
            d = json.loads(text)
        except ValueError as err:
            raise ValueError(f'Cannot parse the affinity file {json_path} as JSON ({err}). '
                             f'Fix the hand edit there. {redo}') from err
        if not isinstance(d, dict) or d.get('format') != FORMAT_NAME:
            got = d.get('format') if isinstance(d, dict) else type(d).__name__
            raise ValueError(f'{json_path} is not a catgen affinity matrix (format {got!r}, '
                             f'expected {FORMAT_NAME!r}). Point at a file written by '
                             f'AffinityMatrix.save or tools/estimate_affinity.py.')
        absent = [k for k in ('values', 'target_classes', 'source_classes') if k not in d]
        if absent:
            raise ValueError(f'{json_path} lacks the key(s) {absent}; an affinity file holds '
                             f'"target_classes", "source_classes" and "values" (one row of '
                             f'source weights per target class). {redo}')
        target, source = d['target_classes'], d['source_classes']
        try:
            values = np.array(d['values'], dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f'{json_path}: "values" must be {len(target)} rows (one per target '
                             f'class) of {len(source)} numbers (one per source class) '
                             f'({type(err).__name__}: {err}). {redo}') from err
        return cls(values, target, source, d.get('meta', {}), validate=False), text

    @classmethod
    def _read_npz(cls, npz_path):
        redo = 'Re-save the matrix, or re-estimate it with tools/estimate_affinity.py.'
        try:
            with np.load(npz_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f'Cannot read the affinity file {npz_path} ({type(err).__name__}: '
                             f'{err}); it is truncated, corrupt or not an affinity NPZ. '
                             f'{redo}') from err
        absent = [k for k in ('values', 'target_classes', 'source_classes') if k not in arrays]
        if absent:
            raise ValueError(f'{npz_path} lacks {absent}: it is not an affinity matrix saved by '
                             f'AffinityMatrix.save (arrays found: {sorted(arrays)}). {redo}')
        meta = json.loads(str(arrays['meta_json'])) if 'meta_json' in arrays else {}
        return cls(arrays['values'], arrays['target_classes'].tolist(),
                   arrays['source_classes'].tolist(), meta, validate=False)

    # ------------------------------------------------------------------ reading
    def top_k(self, k=3):
        """``{target: [(source, weight), ...]}``, the ``k`` largest weights per row, largest first
        (ties: lower source index first)."""
        order = np.argsort(-self.values, axis=1, kind='stable')[:, :k]
        return {t: [(self.source_classes[j], float(self.values[i, j])) for j in order[i]]
                for i, t in enumerate(self.target_classes)}

    def format_top_k(self, k=3):
        """Lines ``target -> source (weight), ...`` for printing."""
        width = max((len(t) for t in self.target_classes), default=0)
        return [f'{t:<{width}} -> ' + ', '.join(f'{s} ({w:.2f})' for s, w in top)
                for t, top in self.top_k(k).items()]

    def heatmap(self, path, top_k_annotate=3, title=None, cmap='viridis', dpi=100):
        """Write a PNG heatmap (see :func:`catgen.visualization.plot_affinity_heatmap`); returns
        its Path."""
        from catgen.visualization.affinity_heatmap import plot_affinity_heatmap
        return plot_affinity_heatmap(self, path, top_k_annotate, title, cmap, dpi)

    # ------------------------------------------------------------------ applying
    def to_channel_matrix(self, dontcare=True):
        """The matrix for channel-space one-hots (docs/conventions.md).

        Returns:
            float64[N_t + 1, N_s + 1] with ``M[0, 0] = 1`` (don't care -> don't care) and
            ``M[1:, 1:] = A`` if ``dontcare``; else a copy of ``A`` (float64[N_t, N_s]).
        """
        if not dontcare:
            return self.values.copy()
        m = np.zeros((self.num_target + 1, self.num_source + 1), dtype=np.float64)
        m[0, 0] = 1.0
        m[1:, 1:] = self.values
        return m

    def apply_onehot(self, y_t):
        """Map a target one-hot (or soft) map to a soft source map: ``y_s = A^T y_t`` per pixel.

        Args:
            y_t: Tensor[B, N_t + 1, H, W] (channel space, channel 0 = don't care) or
                Tensor[B, N_t, H, W] (real classes only).

        Returns:
            Tensor[B, N_s + 1, H, W] or Tensor[B, N_s, H, W] respectively, on y_t's device, in
            y_t's floating dtype (float32 for integer inputs).
        """
        import torch

        if y_t.dim() != 4:
            raise ValueError(f'apply_onehot expects Tensor[B, C, H, W], got shape '
                             f'{tuple(y_t.shape)}.')
        c = y_t.shape[1]
        if c == self.num_target + 1:
            m = self.to_channel_matrix(dontcare=True)
        elif c == self.num_target:
            m = self.values
        else:
            raise ValueError(f'apply_onehot got {c} channels; this matrix has {self.num_target} '
                             f'target classes, so it expects {self.num_target + 1} (with the '
                             f'don\'t-care channel 0) or {self.num_target} (without).')
        dtype = y_t.dtype if y_t.is_floating_point() else torch.float32
        m = torch.as_tensor(m, dtype=dtype, device=y_t.device)
        return torch.einsum('ts,bthw->bshw', m, y_t.to(dtype))

    def apply_ids(self, label, dontcare=True):
        """Map a channel-space target label map to a soft source map.

        Args:
            label: LongTensor[B, H, W] with ids in ``[0, N_t]`` (0 = don't care).
            dontcare: keep the don't-care channel in the output.

        Returns:
            float32 Tensor[B, N_s + 1, H, W] (channel 0 = don't care) if ``dontcare``, else
            float32 Tensor[B, N_s, H, W] (don't-care pixels are all zero).
        """
        import torch

        if label.dim() != 3 or label.is_floating_point():
            raise ValueError(f'apply_ids expects an integer LongTensor[B, H, W] in channel space, '
                             f'got {label.dtype} of shape {tuple(label.shape)}.')
        if label.numel() and (label.min() < 0 or label.max() > self.num_target):
            raise ValueError(f'Label ids must be in [0, {self.num_target}] (channel space, 0 = '
                             f'don\'t care), got [{int(label.min())}, {int(label.max())}]. Map '
                             f'on-disk ids k -> k + 1 and 255 -> 0 first.')
        m = torch.as_tensor(self.to_channel_matrix(dontcare=True), dtype=torch.float32,
                            device=label.device)
        if not dontcare:
            m = m[:, 1:]
        return m[label.long()].permute(0, 3, 1, 2).contiguous()
