"""Gather finished benchmark runs into a CSV, a Markdown table, PNG plots and claim checks.

Every output is written atomically into the benchmark's work dir:

- ``results.csv``: one row per run (strategy, shots, seed, every metric, train_s, test_s);
- ``results.md``: per strategy and shot count, each metric's mean over seeds (``mean ± std`` with
  several seeds; the best value of each column in bold), the checks and their verdicts;
- ``metric_vs_shots.png``: one panel per metric, one line per strategy (x: shots);
- ``bars_<shots>shots.png``: one panel per metric, one bar per strategy;
- ``checks.json``: each claim (``better`` beats ``worse`` on ``metric`` at ``shots``) with both
  values and whether it holds here (``holds``; ``clear``: the difference exceeds the two sides'
  seed standard deviations added, so that seed noise cannot explain it);
- with ``curves``: ``curves_<shots>shots.png`` (one panel per metric, metric vs iteration, mean
  and seed spread per strategy) and a table of the curve points in ``results.md``.
"""
import csv
import io
import json
import math
import os.path as osp

import numpy as np

from catgen.utils.io import atomic_write, write_text_atomic


def _metric_columns(bench_cfg):
    cols = []
    for m in bench_cfg['metrics']:
        if isinstance(m, str):
            m = dict(key=m)
        cols.append(dict(key=m['key'], name=m.get('name', m['key']),
                         lower_is_better=bool(m.get('lower_is_better', True))))
    return cols


def collect(runs):
    """Records (``run.json`` contents) of the finished runs among ``runs``."""
    return [run.record() for run in runs if run.finished()]


def aggregate(records, bench_cfg):
    """``{(strategy, shots): {metric key: (mean, std, n)}}`` over seeds, plus times."""
    keys = [c['key'] for c in _metric_columns(bench_cfg)] + ['train_s', 'test_s']
    groups = {}
    for r in records:
        groups.setdefault((r['strategy'], int(r['shots'])), []).append(r)
    table = {}
    for group, rs in groups.items():
        table[group] = {}
        for key in keys:
            vals = [float(r[key]) if key in ('train_s', 'test_s') else
                    float(r['metrics'].get(key, float('nan'))) for r in rs]
            vals = [v for v in vals if not math.isnan(v)]
            table[group][key] = ((float(np.mean(vals)), float(np.std(vals)), len(vals))
                                 if vals else (float('nan'), float('nan'), 0))
    return table


def check_claims(table, bench_cfg):
    """Verdicts of ``bench_cfg['checks']`` on the aggregated ``table``."""
    lower = {c['key']: c['lower_is_better'] for c in _metric_columns(bench_cfg)}
    verdicts = []
    for chk in bench_cfg.get('checks', []):
        key, shots = chk['metric'], int(chk['shots'])
        better, better_std = table.get((chk['better'], shots), {}).get(key, (float('nan'), 0))[:2]
        worse, worse_std = table.get((chk['worse'], shots), {}).get(key, (float('nan'), 0))[:2]
        if math.isnan(better) or math.isnan(worse):
            holds = clear = None
        else:
            holds = bool(better < worse) if lower.get(key, True) else bool(better > worse)
            clear = bool(holds and abs(better - worse) > better_std + worse_std)
        verdicts.append(dict(chk, better_value=better, worse_value=worse, better_std=better_std,
                             worse_std=worse_std, holds=holds, clear=clear))
    return verdicts


def _fmt_check(mean, std):
    """A check's value: 'n/a' when not measured, no '± 0.00' for a single seed."""
    if mean is None or math.isnan(mean):
        return 'n/a'
    return _fmt(mean, std, 2 if std else 1)


def _fmt(mean, std, n, bold=False):
    if n == 0:
        return 'n/a'
    text = f'{mean:.2f}' if n == 1 else f'{mean:.2f} ± {std:.2f}'
    return f'**{text}**' if bold else text


def markdown_table(table, bench_cfg, verdicts=()):
    """The Markdown text of ``results.md``."""
    cols = _metric_columns(bench_cfg)
    strategies = list(dict.fromkeys(s for s, _ in table))
    order = list(bench_cfg['strategies'])
    strategies.sort(key=lambda s: order.index(s) if s in order else len(order))
    lines = []
    for shots in sorted({k for _, k in table}):
        header = ['strategy'] + [f'{c["name"]} {"↓" if c["lower_is_better"] else "↑"}'
                                 for c in cols] + ['train s', 'eval s']
        lines += [f'### {shots} shots', '', '| ' + ' | '.join(header) + ' |',
                  '|' + '---|' * len(header)]
        best = {}
        for c in cols:
            vals = [table[(s, shots)][c['key']][0] for s in strategies if (s, shots) in table]
            vals = [v for v in vals if not math.isnan(v)]
            if vals:
                best[c['key']] = min(vals) if c['lower_is_better'] else max(vals)
        for s in strategies:
            if (s, shots) not in table:
                continue
            row = table[(s, shots)]
            cells = [s] + [_fmt(*row[c['key']], bold=row[c['key']][0] == best.get(c['key']))
                           for c in cols]
            cells += [f'{row["train_s"][0]:.0f}', f'{row["test_s"][0]:.0f}']
            lines.append('| ' + ' | '.join(cells) + ' |')
        lines.append('')
    if verdicts:
        lines += ['### Checks', '', '| claim | values | holds here |', '|---|---|---|']
        for v in verdicts:
            claim = f'{v["better"]} better than {v["worse"]} on {v["metric"]} at {v["shots"]} shots'
            verdict = {True: 'yes', False: '**no**', None: 'not measured'}[v['holds']]
            if v['holds'] and not v.get('clear', True):
                verdict = 'yes, within the seeds\' spread'
            lines.append(f'| {claim} | {_fmt_check(v["better_value"], v.get("better_std", 0))} '
                         f'vs {_fmt_check(v["worse_value"], v.get("worse_std", 0))} | {verdict} |')
        lines.append('')
    return '\n'.join(lines)


def write_csv(records, bench_cfg, path):
    keys = [c['key'] for c in _metric_columns(bench_cfg)]
    extra = sorted({k for r in records for k in r['metrics']} - set(keys))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(['strategy', 'shots', 'seed'] + keys + extra + ['train_s', 'test_s'])
    for r in sorted(records, key=lambda r: (r['strategy'], r['shots'], r['seed'])):
        writer.writerow([r['strategy'], r['shots'], r['seed']]
                        + [r['metrics'].get(k, '') for k in keys + extra]
                        + [r['train_s'], r['test_s']])
    write_text_atomic(path, buf.getvalue())


def _save_fig(fig, path):
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110, bbox_inches='tight')


def plot(table, bench_cfg, out_dir):
    """Write ``metric_vs_shots.png`` and ``bars_<shots>shots.png``; returns their paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cols = _metric_columns(bench_cfg)
    order = list(bench_cfg['strategies'])
    strategies = [s for s in order if any(k[0] == s for k in table)]
    all_shots = sorted({k for _, k in table})
    paths = []
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6), squeeze=False)
    for ax, c in zip(axes[0], cols):
        for s in strategies:
            xs = [k for k in all_shots if (s, k) in table]
            means = np.array([table[(s, k)][c['key']][0] for k in xs])
            stds = np.array([table[(s, k)][c['key']][1] for k in xs])
            ax.errorbar(xs, means, yerr=stds, marker='o', capsize=3, label=s)
        ax.set_xscale('log')
        ax.minorticks_off()
        ax.set_xticks(all_shots)
        ax.set_xticklabels([str(k) for k in all_shots])
        ax.set_xlabel('shots')
        ax.set_title(f'{c["name"]} ({"lower" if c["lower_is_better"] else "higher"} is better)',
                     fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc='center left', bbox_to_anchor=(1.0, 0.5))
    path = osp.join(out_dir, 'metric_vs_shots.png')
    _save_fig(fig, path)
    plt.close(fig)
    paths.append(path)
    for shots in all_shots:
        fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.6), squeeze=False)
        names = [s for s in strategies if (s, shots) in table]
        for ax, c in zip(axes[0], cols):
            means = [table[(s, shots)][c['key']][0] for s in names]
            stds = [table[(s, shots)][c['key']][1] for s in names]
            ax.bar(range(len(names)), means, yerr=stds, capsize=3,
                   color=[f'C{order.index(s) % 10}' for s in names])
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=45, ha='right', fontsize=7)
            ax.set_title(f'{c["name"]} at {shots} shots '
                         f'({"lower" if c["lower_is_better"] else "higher"} is better)', fontsize=9)
        path = osp.join(out_dir, f'bars_{shots}shots.png')
        _save_fig(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def curves(records, bench_cfg):
    """``{(strategy, shots): {metric key: [(iteration, mean, std, n), ...]}}`` over seeds, for
    the runs that recorded a curve."""
    keys = [c['key'] for c in _metric_columns(bench_cfg)]
    points = {}
    for r in records:
        for it, metrics in (r.get('curve') or {}).items():
            cell = points.setdefault((r['strategy'], int(r['shots'])), {})
            for key in keys:
                value = float(metrics.get(key, float('nan')))
                if not math.isnan(value):
                    cell.setdefault(key, {}).setdefault(int(it), []).append(value)
    return {group: {key: [(it, float(np.mean(v)), float(np.std(v)), len(v))
                          for it, v in sorted(by_iter.items())]
                    for key, by_iter in cell.items()}
            for group, cell in points.items()}


def curves_markdown(curve_table, bench_cfg):
    """One table per shot count: strategy x metric rows, one column per iteration."""
    if not curve_table:
        return ''
    cols = _metric_columns(bench_cfg)
    lines = ['### Metric vs iteration (curves)', '']
    for shots in sorted({k for _, k in curve_table}):
        its = sorted({p[0] for (s, k), cell in curve_table.items() if k == shots
                      for pts in cell.values() for p in pts})
        lines += [f'{shots} shots:', '', '| strategy | metric | ' +
                  ' | '.join(str(i) for i in its) + ' |', '|---|---|' + '---|' * len(its)]
        for (s, k), cell in curve_table.items():
            if k != shots:
                continue
            for c in cols:
                by_it = {p[0]: p for p in cell.get(c['key'], [])}
                lines.append(f'| {s} | {c["name"]} | ' + ' | '.join(
                    _fmt(*by_it[i][1:]) if i in by_it else 'n/a' for i in its) + ' |')
        lines.append('')
    return '\n'.join(lines)


def plot_curves(curve_table, bench_cfg, out_dir):
    """Write ``curves_<shots>shots.png`` (mean over seeds, shaded ± std); returns the paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cols = _metric_columns(bench_cfg)
    order = list(bench_cfg['strategies'])
    paths = []
    for shots in sorted({k for _, k in curve_table}):
        fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.4), squeeze=False)
        for ax, c in zip(axes[0], cols):
            for (s, k), cell in curve_table.items():
                pts = cell.get(c['key'], [])
                if k != shots or not pts:
                    continue
                its, means, stds = (np.array([p[i] for p in pts]) for i in range(3))
                color = f'C{order.index(s) % 10}' if s in order else None
                ax.plot(its, means, marker='o', label=s, color=color)
                ax.fill_between(its, means - stds, means + stds, alpha=0.2, color=color)
            ax.set_xlabel('iteration')
            ax.set_title(f'{c["name"]} at {shots} shots '
                         f'({"lower" if c["lower_is_better"] else "higher"} is better)', fontsize=9)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = osp.join(out_dir, f'curves_{shots}shots.png')
        _save_fig(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def write_report(runs, bench_cfg, out_dir):
    """Gather the finished ``runs`` and write every report file into ``out_dir``. Returns a dict
    with the records, the aggregated table, the verdicts and the written paths."""
    records = collect(runs)
    if not records:
        raise RuntimeError(f'no finished run in {out_dir}: run the benchmark first')
    table = aggregate(records, bench_cfg)
    verdicts = check_claims(table, bench_cfg)
    curve_table = curves(records, bench_cfg)
    md = markdown_table(table, bench_cfg, verdicts) + curves_markdown(curve_table, bench_cfg)
    paths = dict(csv=osp.join(out_dir, 'results.csv'), md=osp.join(out_dir, 'results.md'),
                 checks=osp.join(out_dir, 'checks.json'))
    write_csv(records, bench_cfg, paths['csv'])
    missing = [r.name for r in runs if not r.finished()]
    own = [r for r in records if not r.get('reused_from')]
    total = sum(float(r['train_s']) + float(r['test_s']) for r in own)
    note = (f'Time of the {len(own)} runs (training + evaluation subprocesses, reused results '
            f'not counted): {total / 60:.1f} min.\n')
    note += (f'\n{len(missing)} run(s) not finished: {", ".join(missing)}\n' if missing else '')
    write_text_atomic(paths['md'], md + note)
    write_text_atomic(paths['checks'], json.dumps(verdicts, indent=2) + '\n')
    paths['plots'] = plot(table, bench_cfg, out_dir) + plot_curves(curve_table, bench_cfg, out_dir)
    return dict(records=records, table=table, verdicts=verdicts, paths=paths, markdown=md,
                curves=curve_table)
