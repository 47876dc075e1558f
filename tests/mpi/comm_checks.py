"""Run under ``mpiexec -n N python tests/mpi/comm_checks.py``: checks the Communicator's values.
Prints "comm checks passed" on rank 0 when every check holds on every rank."""

import sys

import numpy as np

from alexnet.parallel import MPICommunicator, abort_on_error, get_communicator, shard_rows


def check(comm):
    rank, size = comm.rank, comm.size
    assert isinstance(comm, MPICommunicator) and size >= 2, f"expected an MPI world of >= 2, got {comm!r}"
    assert comm.local_rank == rank, "one machine: the local rank is the rank"

    # broadcast_: rank 0's values everywhere, in place, mixed dtypes.
    a = np.full((3, 4), float(rank), np.float32)
    b = np.arange(5, dtype=np.int64) * (rank + 1)
    comm.broadcast_([a, b])
    assert np.array_equal(a, np.zeros((3, 4), np.float32)) and np.array_equal(b, np.arange(5))

    # allreduce_mean_: one buffer for arrays of several shapes; known closed-form sum.
    g1 = np.arange(6, dtype=np.float64).reshape(2, 3) * (rank + 1)
    g2 = np.full(7, rank**2, np.float64)
    before = comm.bytes_reduced
    comm.allreduce_mean_([g1, g2])
    ranks = np.arange(size)
    assert np.allclose(g1, np.arange(6).reshape(2, 3) * (ranks + 1).sum() / size, rtol=1e-15)
    assert np.allclose(g2, (ranks**2).sum() / size, rtol=1e-15)
    assert comm.bytes_reduced - before == (6 + 7) * 8, "not one flat buffer"

    # allreduce_sum: exact integers (beyond 2**53 too), floats, arrays.
    assert comm.allreduce_sum(2**60 + rank) == size * 2**60 + ranks.sum()
    assert comm.allreduce_sum(0.5 * rank) == 0.5 * ranks.sum()
    counts = comm.allreduce_sum(np.array([rank, 1, 2 * rank], np.int64))
    assert counts.dtype == np.int64 and counts.tolist() == [ranks.sum(), size, 2 * ranks.sum()]

    # allgather along axis 1, unequal blocks, rank order.
    rng = np.random.default_rng(rank)
    width = 2 + rank
    x = rng.standard_normal((3, width, 4))
    gathered = comm.allgather(x, axis=1)
    widths = [2 + r for r in range(size)]
    expected = np.concatenate(
        [np.random.default_rng(r).standard_normal((3, widths[r], 4)) for r in range(size)], axis=1
    )
    assert np.array_equal(gathered, expected)

    # reduce_scatter = sum over ranks, then this rank's block.
    y = np.random.default_rng(100 + rank).standard_normal((3, sum(widths), 4))
    mine = comm.reduce_scatter(y, axis=1, sizes=widths)
    total = sum(np.random.default_rng(100 + r).standard_normal((3, sum(widths), 4)) for r in range(size))
    start = sum(widths[:rank])
    assert np.allclose(mine, total[:, start : start + widths[rank]], rtol=1e-12, atol=1e-12)

    # adjointness: <allgather(x), y> summed over ranks == <x, reduce_scatter(y)> summed over ranks.
    lhs = comm.allreduce_sum(float(np.vdot(gathered, y)))
    rhs = comm.allreduce_sum(float(np.vdot(x, mine)))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs)), (lhs, rhs)

    # default (even) blocks along axis 0
    z = np.ones((2 * size + 1, 2)) * (rank + 1)
    start, stop = shard_rows(len(z), rank, size)
    part = comm.reduce_scatter(z, axis=0)
    assert part.shape == (stop - start, 2) and np.all(part == (ranks + 1).sum())
    comm.barrier()


if __name__ == "__main__":
    comm = get_communicator()
    with abort_on_error(comm):
        check(comm)
    comm.barrier()
    if comm.is_root:
        print("comm checks passed")
    sys.exit(0)
