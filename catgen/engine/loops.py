"""GenValLoop / GenTestLoop: MMEngine's val/test loops plus a ``prepare`` step for metrics.

Before iterating over the data, each loop calls ``metric.prepare(model, dataloader)`` on every
metric of its evaluator that has a ``prepare`` method (as mmagic's ``GenValLoop`` does). FID and
KID (:class:`~catgen.evaluation.metrics.FID`, :class:`~catgen.evaluation.metrics.KID`) use it to
load the real-image features of the loop's data set from their on-disk cache, or compute and
cache them, so that each evaluation only featurises the generated images. Everything else is
MMEngine's ``ValLoop`` / ``TestLoop``: the same hooks, in the same order, the same val/test
losses, the same metrics dict. ``prepare`` runs after ``before_val_epoch`` / ``before_test_epoch``
and ``model.eval()``, so a hook that swaps in EMA weights has already run.

Config::

    val_cfg = dict(type='GenValLoop')
    test_cfg = dict(type='GenTestLoop')
"""
from mmengine.runner import TestLoop, ValLoop
from mmengine.runner.loops import _parse_losses

from catgen.registry import LOOPS

__all__ = ['GenValLoop', 'GenTestLoop', 'prepare_metrics', 'run_gen_loop']


def prepare_metrics(evaluator, model, dataloader):
    """Call ``metric.prepare(model, dataloader)`` on each metric of ``evaluator`` that has it.

    Returns the list of metrics that were prepared.
    """
    prepared = []
    for metric in getattr(evaluator, 'metrics', []):
        prepare = getattr(metric, 'prepare', None)
        if callable(prepare):
            prepare(model, dataloader)
            prepared.append(metric)
    return prepared


def _progress(dataloader, stage):
    """``dataloader`` with a progress bar of the sampling (main process, terminal only)."""
    import sys

    from mmengine.dist import is_main_process
    from tqdm import tqdm
    return tqdm(dataloader, desc=f'{stage}: generating and measuring', total=len(dataloader),
                unit='batch', leave=False,
                disable=not (is_main_process() and sys.stderr.isatty()))


def run_gen_loop(loop, stage, losses):
    """The body of MMEngine's ``ValLoop.run`` / ``TestLoop.run`` (``stage`` 'val' or 'test',
    ``losses`` the loop's loss dict) with the prepare step and a progress bar."""
    runner = loop.runner
    runner.call_hook(f'before_{stage}')
    runner.call_hook(f'before_{stage}_epoch')
    runner.model.eval()
    prepare_metrics(loop.evaluator, runner.model, loop.dataloader)

    losses.clear()
    for idx, data_batch in enumerate(_progress(loop.dataloader, stage)):
        loop.run_iter(idx, data_batch)

    metrics = loop.evaluator.evaluate(len(loop.dataloader.dataset))
    if losses:
        metrics.update(_parse_losses(losses, stage))

    runner.call_hook(f'after_{stage}_epoch', metrics=metrics)
    runner.call_hook(f'after_{stage}')
    return metrics


@LOOPS.register_module()
class GenValLoop(ValLoop):
    """MMEngine's ``ValLoop`` that first calls ``prepare(model, dataloader)`` on the metrics
    and shows a progress bar over the sampling.

    Args:
        runner: the Runner.
        dataloader: a DataLoader or its config.
        evaluator: an Evaluator, or the config (dict or list) of its metrics.
        fp16: validate under autocast.
    """

    def run(self):
        """Launch validation (as ``ValLoop.run`` with the prepare step)."""
        return run_gen_loop(self, 'val', self.val_loss)


@LOOPS.register_module()
class GenTestLoop(TestLoop):
    """MMEngine's ``TestLoop`` that first calls ``prepare(model, dataloader)`` on the metrics
    and shows a progress bar over the sampling.

    Args:
        runner: the Runner.
        dataloader: a DataLoader or its config.
        evaluator: an Evaluator, or the config (dict or list) of its metrics.
        fp16: test under autocast.
    """

    def run(self):
        """Launch the test (as ``TestLoop.run`` with the prepare step)."""
        return run_gen_loop(self, 'test', self.test_loss)
