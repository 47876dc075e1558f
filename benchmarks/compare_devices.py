"""The same AlexNet, weights and batch on two devices: how far apart are the outputs and gradients?

    python benchmarks/compare_devices.py                      # CPU (NumPy) against GPU (CuPy)
    python benchmarks/compare_devices.py --against cpu        # CPU against CPU: a self-check (all 0)

Builds ``alexnet.AlexNet`` with a fixed seed, copies it, moves the copy to the
second device, and runs one batch of random images through both: the eval-mode
forward (logits), then a training-mode forward + backward with dropout off (so
no random mask differs) and the loss's gradient. Prints, for the logits, the
loss, and every parameter's gradient, max |a - b| / max |a|, and exits 1 when
one is above ``--tolerance`` (default 1e-3: float32 on both sides, different
summation orders in BLAS and cuBLAS; set CUPY_TF32=0 for this check).
"""

import argparse
import copy
import os
import sys

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import nn  # noqa: E402
from alexnet.model import AlexNet  # noqa: E402


def relative(a, b):
    a, b = np.asarray(nn.asnumpy(a), dtype=np.float64), np.asarray(nn.asnumpy(b), dtype=np.float64)
    scale = np.abs(a).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(b).max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--against", choices=("cuda", "cpu"), default="cuda", help="second device (default cuda)"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=227)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args(argv)
    nn.check_device(args.against)

    rng = np.random.default_rng(0)
    reference = AlexNet(num_classes=args.num_classes, crop=args.crop, init="kaiming", dropout=0.0, seed=0)
    other = copy.deepcopy(reference).to(args.against)
    images = rng.standard_normal((args.batch, 3, args.crop, args.crop), dtype=np.float32)
    labels = rng.integers(0, args.num_classes, size=args.batch)
    results = []

    for model in (reference, other):
        model.eval()
    logits_a = reference.forward(images)
    logits_b = other.forward(nn.to_device(images, args.against))
    results.append(("eval logits", relative(logits_a, logits_b)))

    losses, grads = [], []
    for model in (reference, other):
        model.train()
        model.zero_grad()
        loss_fn = nn.SoftmaxCrossEntropyLoss()
        x = nn.to_device(images, model.device)
        losses.append(loss_fn.forward(model.forward(x), nn.to_device(labels, model.device)))
        grads.append(model.backward(loss_fn.backward()))
    results.append(("train loss", abs(losses[0] - losses[1]) / abs(losses[0])))
    for (name, pa), (_, pb) in zip(reference.named_parameters(), other.named_parameters()):
        results.append((f"grad {name}", relative(pa.grad, pb.grad)))

    worst = max(value for _, value in results)
    width = max(len(name) for name, _ in results)
    print(f"cpu vs {args.against}: batch {args.batch}, crop {args.crop}, max |a - b| / max |a|")
    for name, value in results:
        print(f"  {name:<{width}}  {value:.2e}  {'ok' if value <= args.tolerance else 'ABOVE TOLERANCE'}")
    print(
        f"worst {worst:.2e} (tolerance {args.tolerance:g}): {'pass' if worst <= args.tolerance else 'FAIL'}"
    )
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
