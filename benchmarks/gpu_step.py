"""One training step of AlexNet on the GPU: is it host-bound? And what does it ask of CuPy?

    python benchmarks/gpu_step.py                          # batch 128, crop 227, on cuda
    python benchmarks/gpu_step.py --batch 8 --crop 67      # small (e.g. under the CuPy stand-in)

The step is the training loop's: forward, loss, backward, SGD update (§5), then the loop's
running loss and top-1/top-5 counts (``alexnet.metrics.RunningStats.update``), on one batch of
random images already on the device. After ``--warmup`` steps (which include CuPy's first kernel
compilations), per step, median of ``--steps``:

- ``wall``: from a synchronized start until the GPU has finished the step;
- ``host``: from the same start until the step's last call returns, without waiting for the GPU
  at the end (it includes the waits the step's own device-to-host reads force);
- ``device``: CUDA events recorded on the stream before and after the step (the GPU's span,
  idle gaps included).

``wall - host`` is the work still queued on the GPU when the host is done: near 0, the host is
the bound (the GPU ran each kernel before the next arrived); large, the GPU is.

Under the CuPy stand-in (tests/fake_cupy: no GPU, every operation finishes before it returns)
there is no device time: the timings are skipped, saying so, and the stand-in's counters are
printed instead: device-to-host syncs, uploads and kernel launches of one step, per file and per
call site.
"""

import argparse
import os
import statistics
import sys
import time
from collections import Counter

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import nn  # noqa: E402
from alexnet.metrics import RunningStats  # noqa: E402
from alexnet.model import AlexNet  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--crop", type=int, default=227)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    return parser.parse_args(argv)


def by_file(counter):
    files = Counter()
    for site, n in counter.items():
        files[site.rsplit(":", 1)[0]] += n
    return files


def print_counts(counts, steps):
    print(f"per step (the stand-in's counters over {steps} steps, divided by {steps}):")
    for name in ("launches", "syncs", "uploads", "off_main_thread_launches", "float64_results"):
        print(f"  {name:26s} {counts.total(name) / steps:8.1f}")
    for name in ("launches", "syncs"):
        counter = getattr(counts, name)
        print(f"\n{name} per step, by file:")
        for path, n in by_file(counter).most_common():
            print(f"  {n / steps:8.1f}  {path}")
        print(f"{name} per step, by call site:")
        for site, n in counter.most_common():
            print(f"  {n / steps:8.1f}  {site}")


def main(argv=None):
    args = parse_args(argv)
    nn.check_device(args.device)
    xp = np
    if args.device == "cuda":
        import cupy as xp
    stand_in = getattr(xp, "_IS_STAND_IN", False)

    rng = np.random.default_rng(0)
    model = AlexNet(num_classes=args.num_classes, crop=args.crop, init="kaiming", seed=0).to(args.device)
    model.conv1.input_grad = False  # as the trainer: the images need no gradient
    model.train()
    criterion = nn.SoftmaxCrossEntropyLoss()
    optimizer = nn.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    x = nn.to_device(
        rng.standard_normal((args.batch, 3, args.crop, args.crop), dtype=np.float32), args.device
    )
    y = nn.to_device(rng.integers(0, args.num_classes, size=args.batch), args.device)
    stats = RunningStats()

    def step():
        logits = model.forward(x)
        loss = criterion.mean_loss(logits, y, labels_checked=True)  # as the loop: labels checked on the host
        optimizer.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()
        stats.update(loss, logits, y)

    def synchronize():
        if args.device == "cuda":
            xp.cuda.Device().synchronize()

    print(
        f"AlexNet training step, batch {args.batch}, crop {args.crop}, {args.num_classes} classes, "
        f"device {args.device}" + (" (the CuPy stand-in: no GPU)" if stand_in else "")
    )
    start = time.perf_counter()
    for _ in range(args.warmup):
        step()
    synchronize()
    print(
        f"warm-up: {args.warmup} steps in {time.perf_counter() - start:.1f} s (kernel compilation included)"
    )

    if stand_in:
        from cupy import _stand_in

        _stand_in.reset()
        for _ in range(args.steps):
            step()
        print("timing: skipped (the CuPy stand-in has no device time)\n")
        print_counts(_stand_in.counts(), args.steps)
        return 0

    walls, hosts, devices = [], [], []
    for _ in range(args.steps):
        synchronize()
        if args.device == "cuda":
            begin, end = xp.cuda.Event(), xp.cuda.Event()
            begin.record()
        t0 = time.perf_counter()
        step()
        t1 = time.perf_counter()
        if args.device == "cuda":
            end.record()
        synchronize()
        t2 = time.perf_counter()
        hosts.append(t1 - t0)
        walls.append(t2 - t0)
        if args.device == "cuda":
            devices.append(xp.cuda.get_elapsed_time(begin, end) / 1e3)
    wall, host = statistics.median(walls), statistics.median(hosts)
    print(f"median of {args.steps} steps:")
    print(f"  wall    {wall * 1e3:9.2f} ms   {args.batch / wall:8.1f} images/s")
    print(f"  host    {host * 1e3:9.2f} ms   (until the last call returns)")
    if devices:
        print(f"  device  {statistics.median(devices) * 1e3:9.2f} ms   (CUDA events around the step)")
    backlog = wall - host
    print(
        f"  wall - host = {backlog * 1e3:.2f} ms queued on the device when the host was done: "
        + ("the host is the bound" if backlog < 0.1 * wall else "the device is the bound")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
