"""alexnet.parallel.exchange: the all-gather of §3.2's towers and its reduce-scatter backward, with
in-process ranks (alexnet.parallel.ThreadGroup); also the communicators' one interface.

(The same checks over real MPI processes are in tests/test_towers_mpi.py.)
"""

import threading

import numpy as np
import pytest

from alexnet.parallel import AllGather, ThreadGroup, rank_slice, split_sizes
from nn import Linear


def test_split_sizes_and_rank_slices_cover_the_axis_in_order():
    assert split_sizes(10, 2) == [5, 5]
    assert split_sizes(7, 2) == [4, 3]
    assert split_sizes(5, 3) == [2, 2, 1]
    slices = [rank_slice(7, r, 2) for r in range(2)]
    assert slices == [slice(0, 4), slice(4, 7)]


def run_allgather(P, xs, grads, **kwargs):
    def rank_fn(comm):
        layer = AllGather(comm, axis=1, **kwargs)
        y = layer.forward(xs[comm.rank])
        return y, layer.backward(grads[comm.rank]), layer.bytes_forward, layer.bytes_backward

    return ThreadGroup(P).run(rank_fn)


@pytest.mark.parametrize("P", [2, 3])
def test_forward_gathers_in_rank_order_and_backward_is_reduce_scatter(P):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, 3, 4, 4)) for _ in range(P)]
    grads = [rng.standard_normal((2, 3 * P, 4, 4)) for _ in range(P)]
    results = run_allgather(P, xs, grads)
    total = grads[0] + sum(grads[1:])
    for rank, (y, dx, sent_fwd, sent_bwd) in enumerate(results):
        np.testing.assert_array_equal(y, np.concatenate(xs, axis=1))
        np.testing.assert_allclose(dx, total[:, 3 * rank : 3 * (rank + 1)], rtol=1e-14)
        assert sent_fwd == sent_bwd == (P - 1) * xs[0].nbytes


def test_replicated_downstream_keeps_the_slice_without_summing():
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal((4, 5)) for _ in range(2)]
    same = rng.standard_normal((4, 10))
    results = run_allgather(2, xs, [same, same], downstream="replicated")
    for rank, (_, dx, _, sent_bwd) in enumerate(results):
        np.testing.assert_array_equal(dx, same[:, 5 * rank : 5 * (rank + 1)])
        assert sent_bwd == 0


def test_uneven_pieces_are_padded_for_the_collective_and_trimmed():
    rng = np.random.default_rng(3)
    sizes = [4, 3]
    xs = [rng.standard_normal((2, n)) for n in sizes]
    grads = [rng.standard_normal((2, 7)) for _ in range(2)]
    results = run_allgather(2, xs, grads, sizes=sizes)
    for rank, (y, dx, sent_fwd, _) in enumerate(results):
        np.testing.assert_array_equal(y, np.concatenate(xs, axis=1))
        np.testing.assert_allclose(dx, (grads[0] + grads[1])[:, rank_slice(7, rank, 2)], rtol=1e-14)
        assert sent_fwd == 2 * 4 * 8  # one padded piece of 2 x 4 float64


def test_model_parallel_linear_layers_match_one_process_by_the_chain_rule():
    """Two ranks each own half of a layer's outputs; the next layer reads all of them (fc6 -> fc7):
    the gathered forward and the reduce-scattered backward give one process's values and gradients."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6))
    first, second = Linear(6, 8, dtype=np.float64, rng=rng), Linear(8, 4, dtype=np.float64, rng=rng)
    upstream = rng.standard_normal((5, 4))
    out = second.forward(first.forward(x))
    second.backward(upstream)
    d_hidden = upstream @ second.weight.data
    first_grad = d_hidden.T @ x

    def rank_fn(comm):
        half = rank_slice(8, comm.rank, 2)
        out_half = rank_slice(4, comm.rank, 2)
        a = Linear(6, 4, dtype=np.float64)
        a.weight.data, a.bias.data = first.weight.data[half].copy(), first.bias.data[half].copy()
        b = Linear(8, 2, dtype=np.float64)
        b.weight.data, b.bias.data = second.weight.data[out_half].copy(), second.bias.data[out_half].copy()
        gather_hidden, gather_out = AllGather(comm, 1), AllGather(comm, 1, downstream="replicated")
        y = gather_out.forward(b.forward(gather_hidden.forward(a.forward(x))))
        a.backward(gather_hidden.backward(b.backward(gather_out.backward(upstream))))
        return y, a.weight.grad, b.weight.grad

    for rank, (y, a_grad, b_grad) in enumerate(ThreadGroup(2).run(rank_fn)):
        np.testing.assert_allclose(y, out, rtol=1e-13)
        np.testing.assert_allclose(a_grad, first_grad[rank_slice(8, rank, 2)], rtol=1e-12)
        np.testing.assert_allclose(b_grad, second.weight.grad[rank_slice(4, rank, 2)], rtol=1e-12)


def test_an_error_on_one_rank_releases_the_other_and_is_reraised():
    def rank_fn(comm):
        if comm.rank == 1:
            raise ValueError("rank 1 failed on purpose")
        comm.allgather(np.zeros(3), 0)  # would wait forever without the abort

    with pytest.raises(ValueError, match="on purpose"):
        ThreadGroup(2, timeout=30).run(rank_fn)


def test_thread_collectives_sum_broadcast_and_mean():
    def rank_fn(comm):
        a = np.full(3, float(comm.rank + 1))
        b = np.full(2, 10.0 * comm.rank)
        comm.broadcast_([b], root=1)
        total = comm.allreduce_sum([comm.rank + 1, np.ones(2)])
        comm.allreduce_mean_([a])
        return a, b, total

    for a, b, total in ThreadGroup(2).run(rank_fn):
        np.testing.assert_array_equal(a, [1.5] * 3)
        np.testing.assert_array_equal(b, [10.0, 10.0])
        assert total[0] == 3
        np.testing.assert_array_equal(total[1], [2.0, 2.0])


def test_allgather_rejects_a_wrong_slice_size():
    def rank_fn(comm):
        AllGather(comm, 1, sizes=[3, 2]).forward(np.zeros((1, 3)))

    with pytest.raises(ValueError, match="rank 1 expects 2 entries"):
        ThreadGroup(2, timeout=30).run(rank_fn)


def test_thread_group_runs_ranks_concurrently():
    seen = set()

    def rank_fn(comm):
        seen.add(threading.current_thread().name)
        comm.barrier()
        return comm.rank

    assert ThreadGroup(3).run(rank_fn) == [0, 1, 2]
    assert seen == {"rank0", "rank1", "rank2"}


def test_backward_before_forward_and_a_wrong_gradient_shape_are_explained():
    def rank_fn(comm):
        layer = AllGather(comm, 1)
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.zeros((2, 4)))
        layer.forward(np.zeros((2, 2)))
        with pytest.raises(ValueError, match="expected the output shape"):
            layer.backward(np.zeros((2, 3)))

    ThreadGroup(2).run(rank_fn)


def test_unknown_downstream_is_refused():
    with pytest.raises(ValueError, match="downstream must be one of"):
        AllGather(ThreadGroup(2).communicators()[0], 1, downstream="sum")


def test_every_communicator_has_the_interfaces_signatures():
    """One interface: the single-process, MPI and thread communicators take the same arguments."""
    import inspect

    from alexnet.parallel import Communicator, MPICommunicator, SingleProcessCommunicator, ThreadCommunicator

    for name in sorted(Communicator.__abstractmethods__):
        expected = inspect.signature(getattr(Communicator, name)).parameters.keys()
        for cls in (SingleProcessCommunicator, MPICommunicator, ThreadCommunicator):
            assert inspect.signature(getattr(cls, name)).parameters.keys() == expected, (cls.__name__, name)


def test_thread_reduce_scatter_sums_and_keeps_uneven_blocks():
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((2, 5)) for _ in range(2)]

    def rank_fn(comm):
        return comm.reduce_scatter(xs[comm.rank], axis=1, sizes=[4, 1]), comm.reduce_scatter(xs[comm.rank], 1)

    total = xs[0] + xs[1]
    (uneven0, even0), (uneven1, even1) = ThreadGroup(2).run(rank_fn)
    np.testing.assert_array_equal(uneven0, total[:, :4])
    np.testing.assert_array_equal(uneven1, total[:, 4:])
    np.testing.assert_array_equal(even0, total[:, :3])  # the default: split_sizes(5, 2) == [3, 2]
    np.testing.assert_array_equal(even1, total[:, 3:])
