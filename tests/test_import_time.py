"""``import catgen`` stays cheap; heavy optional dependencies load only where they are used."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ('mmseg', 'timm', 'open_clip', 'lpips')


def _run(code):
    path = os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])
    env = dict(os.environ, PYTHONPATH=path)
    result = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


IMPORT_CATGEN = """
    import json, sys, time
    t0 = time.perf_counter()
    import catgen
    seconds = time.perf_counter() - t0
    print(json.dumps({'seconds': seconds,
                      'loaded': [m for m in ('torch', 'mmengine', 'mmcv', 'mmseg', 'timm',
                                             'open_clip', 'lpips', 'catgen.utils')
                                 if m in sys.modules]}))
"""


def test_import_catgen_is_fast_and_light():
    runs = [_run(IMPORT_CATGEN) for _ in range(3)]
    best = min(run['seconds'] for run in runs)
    assert best < 2.0, f'import catgen took {best:.2f} s (best of 3)'
    for run in runs:
        assert run['loaded'] == [], f'import catgen imported {run["loaded"]}'


def test_register_all_modules_leaves_heavy_dependencies_unimported():
    loaded = _run(f"""
        import json, sys
        import catgen.utils.setup_env
        catgen.utils.setup_env.register_all_modules()
        from mmengine.registry import DefaultScope
        assert DefaultScope.get_current_instance().scope_name == 'catgen'
        print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """)
    assert loaded == [], f'register_all_modules() imported {loaded}; import them where used'
