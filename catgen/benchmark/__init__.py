"""Comparative benchmarks: a grid of strategies x shots x seeds (grid.py) and its report
(report.py). Command line: tools/benchmark.py BENCH_CONFIG."""
from .grid import BenchmarkRun, build_run_config, expand_grid, run_one
from .report import write_report

__all__ = ['BenchmarkRun', 'build_run_config', 'expand_grid', 'run_one', 'write_report']
