"""Run under ``mpiexec -n 2 python -m mpi4py tests/mpi/towers_equivalence.py`` (tests/test_towers_mpi.py does):
the two towers of §3.2 as two MPI processes against the one-process AlexNet(groups=2), which every
rank also computes for itself (reduced width 1/16, crop 67).

1. float64, dropout on: logits and every parameter gradient to 1e-10 relative;
2. a short training run (SGD with momentum and weight decay) in float32: the same final weights up
   to float32 rounding noise.
Prints one line per check with the measured errors (rank 0); an assertion aborts both ranks.
"""

import numpy as np

from alexnet.model import AlexNet
from alexnet.parallel import TowerAlexNet, get_communicator
from nn import SGD, SoftmaxCrossEntropyLoss

SMALL = dict(num_classes=10, crop=67, width=1 / 16, seed=3)


def step(model, x, y):
    criterion = SoftmaxCrossEntropyLoss()
    logits = model.forward(x)
    loss = criterion.forward(logits, y)
    model.zero_grad()
    model.backward(criterion.backward())
    return logits, loss


def rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def main():
    comm = get_communicator()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3, 67, 67)), rng.integers(0, 10, 8)

    kwargs = dict(SMALL, dtype=np.float64)
    reference, towers = AlexNet(**kwargs), TowerAlexNet(comm, **kwargs)
    logits, loss = step(reference, x, y)
    t_logits, t_loss = step(towers, x, y)
    grads = towers.gather_rows({name: p.grad for name, p in towers.named_parameters()})
    logit_error = rel(t_logits, logits)
    grad_error = max(rel(grads[name], p.grad) for name, p in reference.named_parameters())
    assert logit_error < 1e-10 and abs(t_loss - loss) < 1e-10 * loss, (logit_error, t_loss, loss)
    assert grad_error < 1e-10, grad_error
    if comm.is_root:
        print(
            f"float64: logits rel. error {logit_error:.1e}, worst gradient rel. error {grad_error:.1e} "
            f"over {len(grads)} parameters"
        )

    kwargs = dict(SMALL, dtype=np.float32, init="kaiming")
    x32 = x.astype(np.float32)
    reference, towers = AlexNet(**kwargs), TowerAlexNet(comm, **kwargs)
    for model in (reference, towers):
        optimizer = SGD(model.parameters(), lr=0.01)
        for _ in range(6):
            step(model, x32, y)
            optimizer.step()
    final = towers.full_state_dict()
    weight_error = max(rel(final[name], value) for name, value in reference.state_dict().items())
    assert weight_error < 2e-5, weight_error
    if comm.is_root:
        print(f"float32, 6 SGD steps: worst weight rel. error {weight_error:.1e}")
        print("towers_equivalence OK on 2 ranks")


if __name__ == "__main__":
    main()
