"""catgen.evaluation does not depend on catgen.affinity: the frozen pretrained networks both use
live in catgen.pretrained, the shared cache in catgen.utils.cache."""
import re
from pathlib import Path

EVALUATION = Path(__file__).resolve().parents[2] / 'catgen' / 'evaluation'
IMPORT = re.compile(r'^\s*(from\s+catgen\.affinity\b|import\s+catgen\.affinity\b|'
                    r'from\s+catgen\s+import\s+.*\baffinity\b)', re.MULTILINE)


def test_evaluation_sources_never_import_catgen_affinity():
    files = sorted(EVALUATION.rglob('*.py'))
    assert files, f'no sources under {EVALUATION}'
    offenders = {str(f.relative_to(EVALUATION)): IMPORT.findall(f.read_text()) for f in files}
    offenders = {f: hits for f, hits in offenders.items() if hits}
    assert offenders == {}, (f'catgen/evaluation imports catgen.affinity in {offenders}; use '
                             f'catgen.pretrained / catgen.utils.cache instead.')


def test_importing_the_metrics_leaves_catgen_affinity_unimported():
    import subprocess
    import sys
    code = ("import sys, catgen.evaluation.metrics, catgen.evaluation.feature_extractors, "
            "catgen.evaluation.real_stats\n"
            "print('catgen.affinity' in sys.modules)\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == 'False'
