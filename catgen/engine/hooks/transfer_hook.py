"""TransferHook: the one way Runner events reach a transfer strategy."""
from mmengine.hooks import Hook

from catgen.registry import HOOKS


def strategy_of(runner):
    """The transfer strategy of ``runner.model`` (unwrapped from DDP), or None."""
    from catgen.models.synthesizers.base_synthesizer import unwrap
    return getattr(unwrap(runner.model), 'transfer', None)


@HOOKS.register_module()
class TransferHook(Hook):
    """Forward the Runner's events to ``model.transfer`` (a :class:`~catgen.transfer.base.
    TransferStrategy`):

    - ``before_run`` (training and testing): :meth:`~catgen.transfer.base.TransferStrategy.
      before_run` (e.g. CAT writes ``affinity.json`` and its heatmap into the work dir);
    - ``before_train_iter``: :meth:`~catgen.transfer.base.TransferStrategy.before_train_iter`
      with the iteration about to run (stage switches);
    - ``before_save_checkpoint``: the strategy's :meth:`~catgen.transfer.base.
      TransferStrategy.checkpoint_meta` goes into ``checkpoint['meta']['transfer']`` (e.g. the
      affinity matrix a CAT run used).

    ``tools/train.py`` adds it to every config whose model has a transfer strategy; a model
    without one makes it a no-op.
    """

    priority = 'ABOVE_NORMAL'  # before the EMA and checkpoint hooks

    def before_run(self, runner):
        strategy = strategy_of(runner)
        if strategy is not None:
            strategy.before_run(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        strategy = strategy_of(runner)
        if strategy is not None:
            from catgen.models.synthesizers.base_synthesizer import unwrap
            strategy.before_train_iter(runner, unwrap(runner.model), runner.iter)

    def before_save_checkpoint(self, runner, checkpoint):
        strategy = strategy_of(runner)
        if strategy is not None:
            checkpoint.setdefault('meta', {})['transfer'] = strategy.checkpoint_meta()
