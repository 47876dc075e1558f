"""``mpiexec -n 2 python tests/mpi/full_disk.py -- TRAIN ARGS...``: on rank 0 every checkpoint
write fails with ENOSPC (the disk is full); the job must end with one line and status 74."""

import errno
import os
import sys

import numpy as np

from alexnet.cli import main
from alexnet.parallel import get_communicator


def full_disk(file, *args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


if get_communicator().rank == 0:
    np.savez = full_disk
sys.exit(main(sys.argv[2:]))
