"""Estimate a class affinity matrix, print it, save it (JSON + NPZ + heatmap PNG), and score it
against the ground truth when the classes come from SynthScenes.

A thin command line over :func:`catgen.apis.affinity.estimate_affinity`: it merges the config
and the flags into an estimator config and prints what the function returns.

Examples::

    # the offline text backend on SynthScenes' class names
    python tools/estimate_affinity.py --estimator text --synthscenes data/synthscenes \\
        --out work_dirs/affinity_text
    # the same without the data on disk: SynthScenes' built-in class lists and truth
    python tools/estimate_affinity.py --estimator text --synthscenes builtin --out DIR
    # a config file holding e.g.
    #   affinity_estimator = dict(type='TextAffinity', temperature=2.0)
    #   synthscenes = 'data/synthscenes'
    python tools/estimate_affinity.py my_affinity_cfg.py --out DIR
    # the measured SynthScenes table of docs/affinity.md, one config per estimator
    python tools/estimate_affinity.py configs/affinity/segmenter_synthscenes.py \\
        --out work_dirs/affinity/segmenter
    # any class lists
    python tools/estimate_affinity.py --estimator text --target-classes lawn,ocean \\
        --source-classes grass,water,sky --out DIR

A config may hold ``affinity_estimator`` (required), ``target_classes`` / ``source_classes``
(lists of names) and ``synthscenes`` (data root, classes.json, or ``'builtin'``); with a SynthScenes
dataset config (``dataset_type = 'SynthScenesDataset'``) its ``data_root`` is used. Command-line
flags override the config.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout

from catgen.utils.cfg_options_action import CfgOptionsAction  # noqa: E402

SHORT_NAMES = {
    'text': 'TextAffinity',
    'ground_truth': 'GroundTruthAffinity',
    'gt': 'GroundTruthAffinity',
    'file': 'FromFileAffinity',
    'combined': 'CombinedAffinity',
    'segmenter': 'SegmenterAffinity',
    'features': 'FeatureAffinity',
    'feature': 'FeatureAffinity',
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Estimate a class affinity matrix (CAT).')
    p.add_argument('config', nargs='?', help='config file with affinity_estimator=dict(type=...)')
    p.add_argument('--estimator', help=f'estimator type or short name ({", ".join(SHORT_NAMES)})')
    p.add_argument('--synthscenes', help="SynthScenes data root or classes.json (class names "
                   "and ground truth), or 'builtin' for the built-in class lists")
    p.add_argument('--target-classes', help='comma-separated target class names')
    p.add_argument('--source-classes', help='comma-separated source class names')
    p.add_argument('--backend', help="text backend: 'sentence_transformers' or 'open_clip'")
    p.add_argument('--model-name', help="open_clip model name, e.g. 'ViT-B-32'")
    p.add_argument('--checkpoint', help='local weights (file or folder) of the backend')
    p.add_argument('--matrix', help='saved matrix for --estimator file')
    p.add_argument('--temperature', type=float)
    p.add_argument('--top-k', type=int)
    p.add_argument('--uniform-mix', type=float)
    p.add_argument('--cache-dir', help='cache folder (default <out>/.cache/affinity)')
    p.add_argument('--no-cache', action='store_true', help='do not read or write the cache')
    p.add_argument('--out', default='work_dirs/affinity', help='output folder')
    p.add_argument('--name', default='affinity', help='file stem of the outputs')
    p.add_argument('--top', type=int, default=3, help='source classes printed per target class')
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                   help='override config entries, e.g. affinity_estimator.temperature=2')
    return p.parse_args(argv)


def _split(names):
    return [n.strip() for n in names.split(',') if n.strip()] if names else None


def load_config(args):
    """The estimator config dict and the class/truth settings, merged from config and flags."""
    cfg = {}
    if args.config:
        from mmengine.config import Config
        if not osp.isfile(args.config):
            raise FileNotFoundError(f'config file {args.config} does not exist.')
        c = Config.fromfile(args.config)
        if args.cfg_options:
            c.merge_from_dict(args.cfg_options)
        if 'affinity_estimator' not in c:
            raise KeyError(f'{args.config} has no affinity_estimator=dict(type=...) entry.')
        cfg['estimator'] = c.affinity_estimator.to_dict()
        for key in ('target_classes', 'source_classes', 'synthscenes'):
            if c.get(key) is not None:
                cfg[key] = c.get(key)
        if 'synthscenes' not in cfg and c.get('dataset_type') == 'SynthScenesDataset':
            cfg['synthscenes'] = c.get('data_root')
    if args.estimator:
        cfg['estimator'] = dict(type=SHORT_NAMES.get(args.estimator, args.estimator))
    if 'estimator' not in cfg:
        raise SystemExit('Give a CONFIG with affinity_estimator=dict(type=...) or --estimator '
                         f'({", ".join(SHORT_NAMES)}).')
    est = cfg['estimator']
    flags = dict(backend=args.backend, model_name=args.model_name, checkpoint=args.checkpoint,
                 path=args.matrix, temperature=args.temperature, top_k=args.top_k,
                 uniform_mix=args.uniform_mix)
    est.update({k: v for k, v in flags.items() if v is not None})
    if args.synthscenes:
        cfg['synthscenes'] = args.synthscenes
    if args.target_classes:
        cfg['target_classes'] = _split(args.target_classes)
    if args.source_classes:
        cfg['source_classes'] = _split(args.source_classes)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    from catgen.apis.affinity import estimate_affinity
    est_cfg = cfg['estimator']
    print(f'{est_cfg["type"]}: estimating the class affinity')
    result = estimate_affinity(
        est_cfg, target_classes=cfg.get('target_classes'),
        source_classes=cfg.get('source_classes'), synthscenes=cfg.get('synthscenes'),
        out_dir=args.out, name=args.name, progress=True, cache_dir=args.cache_dir,
        use_cache=False if args.no_cache else None, top_k_annotate=args.top)
    mat = result.matrix
    print(f'{mat.num_target} target x {mat.num_source} source classes')
    print(f'\nTop-{args.top} source classes per target class:')
    for line in mat.format_top_k(args.top):
        print('  ' + line)
    print(f'\nwrote {result.paths["json"]}, {result.paths["npz"]}, {result.paths["png"]}')
    if result.accuracy is not None:
        from catgen.affinity import format_affinity_accuracy
        print('\nAccuracy against the ground truth:')
        for line in format_affinity_accuracy(result.accuracy):
            print('  ' + line)
        print(f'wrote {result.paths["accuracy"]}')
    return mat


if __name__ == '__main__':
    from catgen.utils.allocator import tune_allocator
    tune_allocator()  # freed buffers stay in the heap (docs/benchmarks.md); CATGEN_MALLOC_TUNING=0: off
    main()
