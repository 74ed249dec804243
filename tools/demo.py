"""The main job on SynthScenes (`make demo`), on a fresh machine, no download.

1. prepare SynthScenes in data/synthscenes (skipped when complete);
2. train the small source OASIS (configs/oasis/oasis_synthscenes-source.py) unless its final
   checkpoint is already in work_dirs/;
3. write a sample grid (label map | generated | real) of source validation maps;
4. print where everything is.
"""
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

DATA = 'data/synthscenes'
SOURCE_CFG = 'configs/oasis/oasis_synthscenes-source.py'
SOURCE_DIR = 'work_dirs/oasis_synthscenes-source'


def run(cmd):
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main():
    t0 = time.time()
    os.chdir(ROOT)
    py = sys.executable
    run([py, 'tools/prepare_synthscenes.py', '--out', DATA])

    from mmengine.config import Config
    max_iters = Config.fromfile(SOURCE_CFG).train_cfg.max_iters
    ckpt = osp.join(SOURCE_DIR, f'iter_{max_iters}.pth')
    if osp.isfile(ckpt):
        print(f'source model found: {ckpt} (delete it to retrain)')
    else:
        resume = ['--resume'] if osp.isfile(osp.join(SOURCE_DIR, 'last_checkpoint')) else []
        run([py, 'tools/train.py', SOURCE_CFG, '--work-dir', SOURCE_DIR] + resume)

    grid = osp.join(SOURCE_DIR, 'samples', 'final.png')
    run([py, 'tools/test.py', SOURCE_CFG, ckpt, '--work-dir', osp.join(SOURCE_DIR, 'test')])
    print('\n=== catgen demo done in {:.1f} min ==='.format((time.time() - t0) / 60))
    print(f'SynthScenes data:        {DATA}/ (classes.json, source/, target/)')
    print(f'source OASIS checkpoint: {ckpt}')
    print(f'sample grid:             {grid}  (rows: label map | generated | real)')
    print(f'metrics:                 {SOURCE_DIR}/test/metrics.json')


if __name__ == '__main__':
    main()
