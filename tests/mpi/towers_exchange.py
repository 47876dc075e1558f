"""Run under ``mpiexec -n 2 python -m mpi4py tests/mpi/towers_exchange.py`` (tests/test_towers_mpi.py does):
alexnet.parallel.AllGather over real MPI against the same computation done on one rank with NumPy."""

import numpy as np

from alexnet.parallel import AllGather, get_communicator


def main():
    comm = get_communicator()
    P, rank = comm.size, comm.rank
    rng = np.random.default_rng(0)  # every rank draws every rank's data
    xs = [rng.standard_normal((3, 4, 5, 2)) for _ in range(P)]
    grads = [rng.standard_normal((3, 4 * P, 5, 2)) for _ in range(P)]

    layer = AllGather(comm, axis=1)
    y = layer.forward(xs[rank])
    assert np.array_equal(y, np.concatenate(xs, axis=1)), "forward is not the rank-order concatenation"
    dx = layer.backward(grads[rank])
    expected = sum(grads)[:, 4 * rank : 4 * (rank + 1)]
    assert np.allclose(dx, expected, rtol=1e-14, atol=1e-14), "backward is not the reduce-scatter"
    assert layer.bytes_forward == layer.bytes_backward == (P - 1) * xs[0].nbytes

    replicated = AllGather(comm, axis=1, downstream="replicated")
    replicated.forward(xs[rank])
    assert np.array_equal(replicated.backward(grads[0]), grads[0][:, 4 * rank : 4 * (rank + 1)])

    sizes = [3, 2] if P == 2 else [2] * P  # uneven pieces (fc8 with an odd class count)
    pieces = [rng.standard_normal((4, n)) for n in sizes]
    uneven = AllGather(comm, axis=1, sizes=sizes)
    assert np.array_equal(uneven.forward(pieces[rank]), np.concatenate(pieces, axis=1))
    g = [rng.standard_normal((4, sum(sizes))) for _ in range(P)]
    start = sum(sizes[:rank])
    assert np.allclose(
        uneven.backward(g[rank]), sum(g)[:, start : start + sizes[rank]], rtol=1e-14, atol=1e-14
    )
    comm.barrier()
    if rank == 0:
        print(f"towers_exchange OK on {P} ranks")


if __name__ == "__main__":
    main()
