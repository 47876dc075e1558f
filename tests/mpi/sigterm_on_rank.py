"""``mpiexec -n 2 python tests/mpi/sigterm_on_rank.py RANK EPOCH STEP -- TRAIN ARGS...``: SIGTERM reaches
ONLY rank RANK, during step STEP of epoch EPOCH (0-based). Every rank must still stop after the same
step and rank 0 must write one mid-epoch checkpoint holding all ranks' running sums."""

import os
import signal
import sys

from alexnet import train
from alexnet.cli import main

rank, epoch_at, step_at = (int(v) for v in sys.argv[1:4])
real_step = train.Trainer.train_step


def step_with_signal(self, x, y, epoch, step):
    if self.comm.rank == rank and (epoch, step) == (epoch_at, step_at):
        os.kill(os.getpid(), signal.SIGTERM)
    return real_step(self, x, y, epoch, step)


train.Trainer.train_step = step_with_signal
sys.exit(main(sys.argv[5:]))
