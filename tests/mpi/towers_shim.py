"""A stand-in for ``nn.distributed.get_communicator`` used by the towers' MPI scripts until the
data-parallel branch's Communicator is merged (same method names, only what the towers use).
Private to tests/mpi/towers_*.py; the library never imports it."""
import numpy as np


def get_communicator():
    try:
        from nn.distributed import get_communicator as real
        return real()
    except ImportError:
        return _ShimCommunicator()


class _ShimCommunicator:
    def __init__(self):
        from mpi4py import MPI
        self._mpi, self._comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        self.is_root = self.rank == 0

    def barrier(self):
        self._comm.Barrier()

    def allgather(self, x, axis):
        x = np.ascontiguousarray(np.moveaxis(x, axis, 0))
        out = np.empty((self.size,) + x.shape, x.dtype)
        self._comm.Allgather(x, out)
        out = out.reshape((self.size * x.shape[0],) + x.shape[1:])
        return np.ascontiguousarray(np.moveaxis(out, 0, axis))

    def reduce_scatter(self, x, axis):
        x = np.ascontiguousarray(np.moveaxis(x, axis, 0))
        out = np.empty((x.shape[0] // self.size,) + x.shape[1:], x.dtype)
        self._comm.Reduce_scatter_block(x, out, op=self._mpi.SUM)
        return np.ascontiguousarray(np.moveaxis(out, 0, axis))

    def allreduce_sum(self, value):
        return self._comm.allreduce(value, op=self._mpi.SUM)

    def broadcast_(self, arrays, root=0):
        for array in arrays:
            self._comm.Bcast(array, root=root)
        return arrays

    def abort(self, code=1):
        self._comm.Abort(code)
