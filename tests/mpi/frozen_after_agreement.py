"""``mpiexec -n 2 python tests/mpi/frozen_after_agreement.py``: the race behind a frozen rank that
hung a stop request (alexnet/parallel/watchdog.py). Rank 1 sends its share of the stop agreement
and then freezes (SIGSTOP); rank 0, asked to stop (SIGTERM), completes the agreement and leaves
the loop. Its watchdog must still end the job (status 130), not leave it waiting for rank 1 in
``MPI_Finalize`` at exit."""

import os
import signal

import numpy as np

from alexnet.parallel import StopWatchdog, get_communicator

comm = get_communicator()
signal.signal(signal.SIGTERM, lambda signum, frame: None)  # a stop request, as train's StopFlag
with StopWatchdog(comm, timeout=2, code=130, prefix="frozen_after_agreement: error") as watchdog:
    agreement = np.array([comm.rank], np.int64)
    if comm.rank == 1:
        comm.comm.Send(agreement, dest=0)  # small: sent at once, before the receiver is there
        os.kill(os.getpid(), signal.SIGSTOP)
    else:
        os.kill(os.getpid(), signal.SIGTERM)
        comm.comm.Recv(agreement, source=1)
    watchdog.settle()
print(f"rank {comm.rank}: left the watchdog", flush=True)
