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

__all__ = ['GenValLoop', 'GenTestLoop', 'prepare_metrics']


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


@LOOPS.register_module()
class GenValLoop(ValLoop):
    """MMEngine's ``ValLoop`` that first calls ``prepare(model, dataloader)`` on the metrics.

    Args:
        runner: the Runner.
        dataloader: a DataLoader or its config.
        evaluator: an Evaluator, or the config (dict or list) of its metrics.
        fp16: validate under autocast.
    """

    def run(self):
        """Launch validation (as ``ValLoop.run`` with the prepare step)."""
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        self.runner.model.eval()
        prepare_metrics(self.evaluator, self.runner.model, self.dataloader)

        self.val_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)

        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.val_loss:
            metrics.update(_parse_losses(self.val_loss, 'val'))

        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics


@LOOPS.register_module()
class GenTestLoop(TestLoop):
    """MMEngine's ``TestLoop`` that first calls ``prepare(model, dataloader)`` on the metrics.

    Args:
        runner: the Runner.
        dataloader: a DataLoader or its config.
        evaluator: an Evaluator, or the config (dict or list) of its metrics.
        fp16: test under autocast.
    """

    def run(self):
        """Launch the test (as ``TestLoop.run`` with the prepare step)."""
        self.runner.call_hook('before_test')
        self.runner.call_hook('before_test_epoch')
        self.runner.model.eval()
        prepare_metrics(self.evaluator, self.runner.model, self.dataloader)

        self.test_loss.clear()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)

        metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
        if self.test_loss:
            metrics.update(_parse_losses(self.test_loss, 'test'))

        self.runner.call_hook('after_test_epoch', metrics=metrics)
        self.runner.call_hook('after_test')
        return metrics
