"""Evaluate a trained synthesizer with its config's test data and metrics."""
import json
import os.path as osp


def evaluate(config, checkpoint, work_dir=None, out=None, cfg_options=None, launcher='none'):
    """Run the config's test loop on the model in ``checkpoint``; write the metrics as JSON.

    The model is the config's architecture with the checkpoint's weights, loaded strictly
    (one readable message on a mismatch, never a partly random model scored); the transfer
    strategy, its source checkpoint and its training data are not needed
    (:func:`~catgen.apis.inference.load_inference_config`).

    Args:
        config: config path (e.g. the one a run dumped into its work dir).
        checkpoint: path of a checkpoint written by tools/train.py; None for a training-free
            strategy (CATTrainingFree), refused for anything else; 'random' evaluates the
            untrained model as built, on purpose (a floor for comparisons).
        work_dir: where logs and metrics go (default ``work_dirs/<config name>``).
        out: metrics JSON path (default ``<work_dir>/metrics.json``).
        cfg_options: dict of config overrides (checked for typos).
        launcher: 'none' or a distributed launcher ('pytorch', ...).

    Returns:
        dict of metric name -> value.
    """
    from mmengine.dist import is_main_process

    from catgen.apis.inference import load_inference_config, load_trained_weights
    from catgen.engine.distributed import setup_distributed
    from catgen.engine.runner import build_runner
    from catgen.utils.config import add_transfer_hook, load_config
    from catgen.utils.io import write_text_atomic
    from catgen.utils.setup_env import setup_env

    setup_env()
    random_weights = checkpoint == 'random'
    if random_weights:
        checkpoint = None
    if checkpoint is not None:
        from catgen.model_zoo.zoo import resolve_checkpoint
        checkpoint = resolve_checkpoint(checkpoint)  # zoo://NAME: its file, checksum verified
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist; pass the path '
                                'of a .pth written by tools/train.py (or "none").')
    cfg = load_config(config, cfg_options, work_dir, launcher)
    cfg = load_inference_config(cfg, has_checkpoint=checkpoint is not None,
                                random_weights=random_weights)
    # catgen loads the weights itself (weights_only, strict, one readable message on a mismatch)
    # instead of MMEngine's load_from, which only warns and would score a partly random model.
    cfg.load_from = None
    if cfg.model.get('transfer'):  # a training-free strategy: it writes its files (affinity)
        add_transfer_hook(cfg)
    setup_distributed(cfg)
    runner = build_runner(cfg)
    if checkpoint is not None:
        load_trained_weights(runner.model, checkpoint)
        runner.logger.info(f'loaded weights from {checkpoint}')
    metrics = runner.test()
    if is_main_process():
        out = out or osp.join(cfg.work_dir, 'metrics.json')
        write_text_atomic(out, json.dumps({k: float(v) if hasattr(v, '__float__') else v
                                           for k, v in metrics.items()}, indent=2) + '\n')
        print(f'metrics: {json.dumps(metrics, default=float)}')
        print(f'metrics written to {out}')
    return metrics
