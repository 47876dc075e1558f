"""``mpiexec -n 2 python tests/mpi/raise_on_rank.py RANK -- TRAIN ARGS...``: the trainer raises on
rank RANK at its second step. The whole job must end at once with a non-zero status."""

import sys

from alexnet import train
from alexnet.cli import main

failing_rank = int(sys.argv[1])
real_step = train.Trainer.train_step


def failing_step(self, x, y, epoch, step):
    if self.comm.rank == failing_rank and step == 1:
        raise RuntimeError(f"injected failure on rank {failing_rank}")
    return real_step(self, x, y, epoch, step)


train.Trainer.train_step = failing_step
sys.exit(main(sys.argv[3:]))
