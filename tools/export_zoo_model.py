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
import os
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
    p.add_argument('--refresh-ema-batches', type=int, default=0,
                   help='first recompute the EMA generator\'s batch-norm statistics on this many '
                        'training batches of --config (EMANormStatsHook, official OASIS: 50), '
                        'for a checkpoint trained without that hook')
    return p.parse_args(argv)


def refreshed_checkpoint(checkpoint, config, num_batches, out):
    """``checkpoint`` with its EMA generator's batch-norm statistics recomputed on
    ``num_batches`` training batches of ``config``, saved to ``out``."""
    import itertools

    import torch
    from mmengine.config import Config
    from mmengine.runner import Runner

    from catgen.registry import MODELS
    from catgen.utils.checkpoint import load_state_dict_checked, read_state_dict, safe_load
    from catgen.utils.config import fill_num_classes
    from catgen.utils.setup_env import setup_env
    setup_env()  # default scope catgen: the config's types
    cfg = fill_num_classes(Config.fromfile(config))
    model = MODELS.build(cfg.model)
    ckpt = safe_load(checkpoint)
    load_state_dict_checked(model, read_state_dict(ckpt, what=checkpoint), strict=True,
                            source=checkpoint)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    ran = model.refresh_ema_norm_stats(itertools.islice(iter(loader), num_batches))
    print(f'EMA batch-norm statistics recomputed on {ran} batches of {config}')
    torch.save({'state_dict': model.state_dict(), 'meta': ckpt.get('meta', {})}, out)
    return out


def main(argv=None):
    args = parse_args(argv)
    from catgen.model_zoo import export_zoo_checkpoint, zoo_entry
    from catgen.utils.setup_env import setup_env
    setup_env(init_default_scope=False)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'--config {args.config} does not exist; pass the config the '
                                f'checkpoint was trained with.')
    info = dict(config=args.config, command=args.command,
                exported_from=osp.basename(args.checkpoint))
    if args.metrics:
        with open(args.metrics) as f:
            info['metrics'] = json.load(f)
    if args.note:
        info['note'] = args.note
    checkpoint = args.checkpoint
    if args.refresh_ema_batches > 0:
        import tempfile
        info['ema_norm_stats'] = f'recomputed on {args.refresh_ema_batches} training batches'
        tmp = tempfile.NamedTemporaryFile(suffix='.pth', delete=False).name
        checkpoint = refreshed_checkpoint(args.checkpoint, args.config,
                                          args.refresh_ema_batches, tmp)
    try:
        export_zoo_checkpoint(checkpoint, args.name, info=info)
    finally:
        if checkpoint != args.checkpoint:
            os.unlink(checkpoint)
    entry = zoo_entry(args.name)
    print(f'zoo://{args.name}: {entry["file"]} ({entry["bytes"] / 1e6:.2f} MB, '
          f'{entry["float_values"]:,} weights and statistics, sha256 {entry["sha256"][:16]}...)')
    return entry


if __name__ == '__main__':
    main()
