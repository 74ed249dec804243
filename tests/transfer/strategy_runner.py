"""Run a synthesizer with a transfer strategy for two iterations through MMEngine's Runner (so
that the TransferHook reaches the strategy); shared by the generator-family tests."""
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner


def run_two_iterations(model_cfg, work_dir, dataset, name):
    """Train ``model_cfg`` 2 iterations of batch 4 on ``dataset``; returns (model, generator state
    before training)."""
    from catgen.engine.hooks import TransferHook
    runner = Runner(
        model=model_cfg, work_dir=str(work_dir),
        train_dataloader=dict(dataset=dataset, batch_size=4, collate_fn=pseudo_collate,
                              sampler=dict(type='InfiniteSampler', shuffle=False)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2),
        optim_wrapper=dict(constructor='GANOptimWrapperConstructor',
                           generator=dict(optimizer=dict(type='Adam', lr=1e-3)),
                           discriminator=dict(optimizer=dict(type='Adam', lr=1e-3))),
        custom_hooks=[TransferHook()], default_hooks=dict(checkpoint=None, logger=None),
        default_scope='catgen', experiment_name=f'{name}-{work_dir.name}')
    before = {k: v.detach().clone() for k, v in runner.model.generator.state_dict().items()}
    runner.train()
    return runner.model, before


def moved_floats(before, after):
    """Names of the floating-point tensors that changed."""
    return [k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])]
