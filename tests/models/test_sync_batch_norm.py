"""SyncBatchNorm2d: plain BatchNorm2d with one process; global-batch BatchNorm across 2 gloo
processes (forked from the test process, a file rendezvous: no port, no re-import)."""
import multiprocessing as mp
import os
import traceback

import pytest
import torch
import torch.nn as nn

from catgen.models.layers import SPADE, SyncBatchNorm2d


def _worker(rank, world, store, fn, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    try:
        dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank,
                                world_size=world)
        result = fn(rank, world)
        dist.barrier()
        dist.destroy_process_group()
        torch.save(result, os.path.join(out_dir, f'rank{rank}.pt'))
    except BaseException:
        with open(os.path.join(out_dir, f'rank{rank}.err'), 'w') as f:
            f.write(traceback.format_exc())
        raise


def run_in_processes(fn, tmp_path, world=2, timeout=60):
    """Run ``fn(rank, world)`` in ``world`` forked processes that form a gloo group; return the
    list of their return values (saved with torch.save), rank order."""
    ctx = mp.get_context('fork')
    store = tmp_path / 'store'
    procs = [ctx.Process(target=_worker, args=(r, world, str(store), fn, str(tmp_path)))
             for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    errors = [(tmp_path / f'rank{r}.err') for r in range(world)]
    msgs = [e.read_text() for e in errors if e.exists()]
    assert not msgs, '\n'.join(msgs)
    assert [p.exitcode for p in procs] == [0] * world, 'a worker died or hung'
    return [torch.load(tmp_path / f'rank{r}.pt', weights_only=True) for r in range(world)]


def global_data(batch=4, c=3, size=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, c, size, size, generator=g) * 3 + 1.5
    w = torch.randn(batch, c, size, size, generator=g)  # weights of a non-trivial loss
    return x, w


def reference(affine, steps=2):
    """nn.BatchNorm2d on the global batch: outputs, input grads, affine grads, running stats."""
    x, w = global_data()
    bn = nn.BatchNorm2d(3, affine=affine)
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
            bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    outs = []
    for step in range(steps):
        xi = (x + step).requires_grad_(True)
        out = bn(xi)
        (out * w).sum().backward()
        outs.append((out.detach(), xi.grad))
    grads = (bn.weight.grad, bn.bias.grad) if affine else None
    return outs, grads, bn.running_mean, bn.running_var, bn.num_batches_tracked


def _sync_bn_rank(affine):
    def fn(rank, world):
        x, w = global_data()
        per = x.shape[0] // world
        sl = slice(rank * per, (rank + 1) * per)
        bn = SyncBatchNorm2d(3, affine=affine)
        if affine:
            with torch.no_grad():
                bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
                bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        outs = []
        for step in range(2):
            xi = (x[sl] + step).requires_grad_(True)
            out = bn(xi)
            (out * w[sl]).sum().backward()
            outs.append((out.detach(), xi.grad))
        bn.eval()
        eval_out = bn(x[sl])
        grads = (bn.weight.grad, bn.bias.grad) if affine else None
        return dict(outs=outs, grads=grads, running_mean=bn.running_mean,
                    running_var=bn.running_var, tracked=bn.num_batches_tracked,
                    eval_out=eval_out)
    return fn


def test_one_process_is_batchnorm2d():
    x, _ = global_data()
    torch.manual_seed(0)
    ref, sync = nn.BatchNorm2d(3, affine=False), SyncBatchNorm2d(3, affine=False)
    assert set(sync.state_dict()) == set(ref.state_dict())
    for mode in (True, False):
        ref.train(mode), sync.train(mode)
        assert torch.equal(sync(x), ref(x))
    assert torch.equal(sync.running_mean, ref.running_mean)
    assert torch.equal(sync.running_var, ref.running_var)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='sync must be True or False'):
        SyncBatchNorm2d(3, sync='auto')
    with pytest.raises(ValueError, match='expected 4D input'):
        SyncBatchNorm2d(3)(torch.zeros(2, 3))


def test_spade_uses_it_for_batch_norm():
    spade = SPADE(4, 3, hidden_nc=8, norm_type='batch')
    assert isinstance(spade.param_free_norm, SyncBatchNorm2d)
    assert isinstance(spade.param_free_norm, nn.BatchNorm2d)  # BSA, converters rely on it
    assert not spade.param_free_norm.affine and spade.param_free_norm.sync


@pytest.mark.parametrize('affine', [False, True])
def test_two_processes_equal_batchnorm_on_the_global_batch(tmp_path, affine):
    results = run_in_processes(_sync_bn_rank(affine), tmp_path)
    outs, grads, mean, var, tracked = reference(affine)
    for rank, res in enumerate(results):
        sl = slice(rank * 2, rank * 2 + 2)
        for (out, grad), (ref_out, ref_grad) in zip(res['outs'], outs):
            torch.testing.assert_close(out, ref_out[sl], rtol=1e-5, atol=1e-6)
            # d(sum over ranks of the losses)/dx: the global batch's gradient
            torch.testing.assert_close(grad, ref_grad[sl], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(res['running_mean'], mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(res['running_var'], var, rtol=1e-5, atol=1e-6)
        assert int(res['tracked']) == int(tracked) == 2
    # every rank holds the same running statistics (eval mode then normalises with them)
    assert torch.equal(results[0]['running_var'], results[1]['running_var'])
    if affine:  # DDP sums (averages) the per-rank scale/shift gradients: their sum is global
        for k in range(2):
            torch.testing.assert_close(results[0]['grads'][k] + results[1]['grads'][k],
                                       grads[k], rtol=1e-5, atol=1e-6)


def _unsynced_rank(rank, world):
    x, _ = global_data()
    return SyncBatchNorm2d(3, affine=False, sync=False)(x[rank * 2:rank * 2 + 2])


def test_sync_false_keeps_per_process_statistics(tmp_path):
    results = run_in_processes(_unsynced_rank, tmp_path)
    x, _ = global_data()
    (global_out, _), = reference(False, steps=1)[0]
    for rank, out in enumerate(results):
        assert torch.equal(out, nn.BatchNorm2d(3, affine=False)(x[rank * 2:rank * 2 + 2]))
        # the data make the half batches' statistics differ from the whole batch's
        assert (out - global_out[rank * 2:rank * 2 + 2]).abs().max() > 1e-2
