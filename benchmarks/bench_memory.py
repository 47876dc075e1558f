"""Peak resident memory of AlexNet training steps: ours against PyTorch, each in its own process.

    python benchmarks/bench_memory.py                        # ours, batch 128, crop 227
    .venv-bench/bin/python benchmarks/bench_memory.py --both # ours, then PyTorch (child processes)
    python benchmarks/bench_memory.py --who torch --batch 32 --crop 112 --steps 2

One process per library: it builds the AlexNet-shaped stack of ``bench_layers.py``
(the same layers, weights and shapes), runs ``--steps`` training steps (zero_grad,
forward, loss, backward, SGD with momentum) and prints getrusage's ru_maxrss (the
peak resident set of the process, in MiB) together with the resident set before
the first step. ``--both`` starts one child per library with this interpreter
and prints the two side by side.
"""

import argparse
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.append(os.path.dirname(HERE))  # after PYTHONPATH, so another copy of nn can be measured


def current_rss_mib():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run(who, batch, crop, steps, threads):
    import nn

    nn.configure_blas()  # before NumPy loads (nn/blas.py)
    import bench_layers as bl
    import numpy as np

    rng = np.random.default_rng(0)
    layers = bl.alexnet_layers(rng, crop)
    x = rng.standard_normal((batch, 3, crop, crop), dtype=np.float32)
    y = rng.integers(0, 1000, size=batch)
    if who == "ours":
        model = nn.Sequential(*[layer for _, layer, _ in layers])
        layers[0][1].input_grad = False  # as alexnet train: no gradient for the images
        loss_fn = nn.SoftmaxCrossEntropyLoss()
        opt = nn.SGD(model.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad()
            loss_fn.forward(model.forward(x), y)
            model.backward(loss_fn.backward())
            opt.step()
    else:
        import torch

        torch.set_num_threads(threads)
        model = bl.torch_alexnet(torch, layers)
        opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9, weight_decay=5e-4)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(tx), ty).backward()
            opt.step()

    del layers
    before = current_rss_mib()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    print(
        f"{who}: batch {batch}, crop {crop}, {steps} step(s): peak RSS {peak_rss_mib():.0f} MiB "
        f"(resident before the first step {before:.0f} MiB), {seconds:.2f} s per step",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--who", choices=("ours", "torch"), default="ours")
    parser.add_argument("--both", action="store_true", help="ours, then PyTorch, each in a child process")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--crop", type=int, default=227)
    parser.add_argument("--steps", type=int, default=1, help="training steps to run (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    if args.both:
        for who in ("ours", "torch"):
            subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--who",
                    who,
                    "--batch",
                    str(args.batch),
                    "--crop",
                    str(args.crop),
                    "--steps",
                    str(args.steps),
                    "--threads",
                    str(args.threads),
                ],
                check=True,
            )
        return
    run(args.who, args.batch, args.crop, args.steps, args.threads)


if __name__ == "__main__":
    main()
