"""Run as ``mpiexec -n 2 python tests/mpi/dp_equivalence.py PREPARED_DIR``.

Data-parallel SGD steps in float64 against one process: rank 0 also trains the same network on
the whole batches by itself, and every weight after the steps must agree to 1e-10 relative.
The training set is cut to 49 images with batches of 16, so the last batch (1 image) leaves
rank 1 with nothing: the weighted gradient and the dropout generators' skip are exercised too.
"""

import sys

import numpy as np

import data
from alexnet import AlexNet
from alexnet.parallel import DataParallel, abort_on_error, get_communicator
from nn import SGD, SoftmaxCrossEntropyLoss

CROP, BATCH, IMAGES, EPOCHS = 67, 16, 49, 2


class First:
    """The first ``n`` images of a PreparedDataset (what the Loader reads)."""

    def __init__(self, ds, n):
        self.images, self.labels = ds.images[:n], ds.labels[:n]
        self.mean_image, self.eigvals, self.eigvecs, self.size = (
            ds.mean_image,
            ds.eigvals,
            ds.eigvecs,
            ds.size,
        )

    def __len__(self):
        return len(self.images)


def train(comm, dataset, shard):
    model = AlexNet(num_classes=10, crop=CROP, width=0.0625, init="kaiming", seed=5, dtype=np.float64)
    optimizer = SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    criterion = SoftmaxCrossEntropyLoss()
    dp = DataParallel(comm, model, optimizer)
    dp.broadcast_state()
    loader = data.Loader(
        dataset, BATCH, crop=CROP, train=True, seed=11, input_scale=64.0, workers=0, shard=shard
    )

    def forward_backward(x, y):
        loss = criterion.forward(model.forward(x.astype(np.float64)), y)
        optimizer.zero_grad()
        model.backward(criterion.backward())
        return loss, None

    losses = []
    for epoch in range(EPOCHS):
        loader.set_epoch(epoch)
        for k, (x, y) in enumerate(loader):
            _, _, batch_loss = dp.step(forward_backward, x, y, loader.rows_of(k), False)
            optimizer.step()
            losses.append(batch_loss)
    return model, losses


def main(path):
    comm = get_communicator()
    assert comm.size == 2, comm
    dataset = First(data.PreparedDataset(path, "train"), IMAGES)
    model, losses = train(comm, dataset, (comm.rank, comm.size))
    if comm.is_root:
        from alexnet.parallel import SingleProcessCommunicator

        alone, alone_losses = train(SingleProcessCommunicator(), dataset, (0, 1))
        worst = 0.0
        for (_name, a), (_, b) in zip(model.named_parameters(), alone.named_parameters()):
            scale = np.abs(b.data).max()
            worst = max(worst, np.abs(a.data - b.data).max() / scale)
        assert worst <= 1e-10, f"data-parallel weights differ from one process by {worst:.3g} (relative)"
        assert np.allclose(losses, alone_losses, rtol=1e-10), (losses, alone_losses)
        moved = max(
            np.abs(a.data - b.data).max()
            for a, b in zip(
                model.parameters(),
                AlexNet(
                    num_classes=10, crop=CROP, width=0.0625, init="kaiming", seed=5, dtype=np.float64
                ).parameters(),
            )
        )
        assert moved > 1e-3, "the weights did not move: the test would prove nothing"
        print(
            f"float64 data-parallel == one process after {len(losses)} steps: worst relative "
            f"difference {worst:.2e}"
        )
    comm.barrier()


if __name__ == "__main__":
    with abort_on_error(get_communicator()):
        main(sys.argv[1])
