"""Export a trained checkpoint into catgen's model zoo (``zoo://NAME``, docs/model_zoo.md).

    python tools/export_zoo_model.py work_dirs/oasis_synthscenes-source/iter_6000.pth \
        oasis_synthscenes-source --config configs/oasis/oasis_synthscenes-source.py \
        --command "python tools/train.py configs/oasis/oasis_synthscenes-source.py" \
        --metrics docs/results/zoo/oasis_synthscenes-source.json

Writes ``catgen/model_zoo/weights/NAME.pth`` (a slim checkpoint: a synthesizer's EMA generator and
discriminator, or a segmenter's weights, with the checkpoint's meta; no optimizer state) and its
entry in ``catgen/model_zoo/zoo.json`` (file, SHA-256, size, config, command, metrics). Both are
written under temporary names and renamed when complete.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Export a checkpoint into catgen\'s model zoo.')
    p.add_argument('checkpoint', help='checkpoint written by tools/train.py or '
                   'tools/train_segmenter.py')
    p.add_argument('name', help='zoo name: the model is then zoo://NAME')
    p.add_argument('--config', required=True, help='the config it was trained with (recorded)')
    p.add_argument('--command', required=True, help='the command that reproduces it (recorded)')
    p.add_argument('--metrics', help='a JSON file of measured metrics to record with it')
    p.add_argument('--note', help='one line recorded with it (e.g. the machine and the time)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from catgen.model_zoo import export_zoo_checkpoint, zoo_entry
    from catgen.utils.setup_env import setup_env
    setup_env(init_default_scope=False)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'--config {args.config} does not exist; pass the config the '
                                f'checkpoint was trained with.')
    info = dict(config=args.config, command=args.command)
    if args.metrics:
        with open(args.metrics) as f:
            info['metrics'] = json.load(f)
    if args.note:
        info['note'] = args.note
    export_zoo_checkpoint(args.checkpoint, args.name, info=info)
    entry = zoo_entry(args.name)
    print(f'zoo://{args.name}: {entry["file"]} ({entry["bytes"] / 1e6:.2f} MB, '
          f'{entry["parameters"]:,} parameters, sha256 {entry["sha256"][:16]}...)')
    return entry


if __name__ == '__main__':
    main()
