"""What the two towers of §3.2 cost as two processes: time per step, images/s, the share of each
step spent in the exchanges, and the bytes that cross, next to one process.

    python benchmarks/bench_towers.py                      # batch 128 at crops 112 and 227, full width
    python benchmarks/bench_towers.py --crops 112 --reps 3 --json towers.json

Rows (each a median of ``--reps`` training steps after one warm-up step, on random images):

* ``one process, 2 threads``: ``AlexNet(groups=2)`` in one process with 2 BLAS threads;
* ``one process, 1 thread``: the same with one BLAS thread (steadier when other processes load the
  machine: spinning BLAS threads suffer most from oversubscription);
* ``towers, 2 x 1 thread``: ``mpiexec -n 2`` with ``alexnet.towers.TowerAlexNet``, one BLAS thread
  per rank (``--towers`` training).

A step is zero_grad, forward, loss, backward and the SGD update. ``comm %`` is the time rank 0
spends inside the all-gathers and reduce-scatters, INCLUDING waiting for the other rank (so load
imbalance shows up there too). ``MB sent / step`` is what one rank sends (measured by the exchange
layers; ``alexnet.towers.exchange_bytes`` predicts the same from the shapes). For comparison the
table ends with the bytes data-parallel training all-reduces per step (every gradient) and the size
of fc6 and fc7's weights: the paper's reason for splitting the network rather than the batch.

On a 2-core machine two processes cannot beat one process using both cores; the numbers show what
the split costs, not a speed-up.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(args):
    """One configuration, timed in this process (under mpiexec for the towers); prints one JSON line."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from alexnet.model import AlexNet
    from alexnet.towers import TowerAlexNet
    from nn import SGD, SoftmaxCrossEntropyLoss

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, 3, args.crop, args.crop)).astype(np.float32)
    y = rng.integers(0, 1000, args.batch)
    reference = AlexNet(num_classes=1000, crop=args.crop, groups=2, init="kaiming", width=args.width, seed=0)
    reference.conv1.input_grad = False
    comm = None
    if args.worker == "towers":
        from nn.distributed import get_communicator
        comm = get_communicator()
        model = TowerAlexNet(comm, reference=reference)
        del reference
    else:
        model = reference
    criterion = SoftmaxCrossEntropyLoss()
    optimizer = SGD(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad()
        logits = model.forward(x)
        criterion.forward(logits, y)
        model.backward(criterion.backward())
        optimizer.step()

    times, comm_seconds = [], []
    for rep in range(args.reps + 1):
        if comm is not None:
            comm.barrier()
        start = time.perf_counter()
        step()
        elapsed = time.perf_counter() - start
        if rep:                                    # the first step is the warm-up
            times.append(elapsed)
            if comm is not None:
                comm_seconds.append(sum(t["seconds"] for t in model.traffic()))
    result = {"config": args.worker, "batch": args.batch, "crop": args.crop, "width": args.width,
              "step_s": statistics.median(times), "times": times}
    result["images_per_s"] = args.batch / result["step_s"]
    if comm is not None:
        traffic = model.traffic()
        result["comm_s"] = statistics.median(comm_seconds)
        result["comm_share"] = result["comm_s"] / result["step_s"]
        result["bytes_per_step"] = sum(t["bytes_forward"] + t["bytes_backward"] for t in traffic)
        result["traffic"] = [{k: t[k] for k in ("exchange", "bytes_forward", "bytes_backward")} for t in traffic]
        if comm.rank != 0:
            return
    print("RESULT " + json.dumps(result), flush=True)


def run_config(kind, batch, crop, width, reps):
    threads = "2" if kind == "one" else "1"
    kind = "one" if kind == "one1" else kind
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, __file__, "--worker", kind, "--batch", str(batch), "--crop", str(crop),
               "--width", str(width), "--reps", str(reps)]
    if kind == "towers":
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            raise SystemExit("mpiexec not found: pip install -e .[mpi]")
        command = [mpiexec, "-n", "2", sys.executable, "-m", "mpi4py"] + command[1:]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def reference_bytes(batch, crop, width):
    """Predicted towers bytes, data-parallel all-reduce bytes and fc6/fc7 weight bytes (float32)."""
    sys.path.insert(0, str(REPO))
    from alexnet.model import AlexNet
    from alexnet.towers import exchange_bytes

    model = AlexNet(num_classes=1000, crop=crop, groups=2, width=width, seed=0)
    towers = sum(p["bytes_forward"] + p["bytes_backward"] for p in exchange_bytes(model, batch))
    # a ring all-reduce over P ranks sends 2 (P - 1) / P of the buffer from each rank: P = 2 sends it once
    data_parallel = model.num_parameters() * 4
    fc67 = sum(p.size for p in (model.fc6.weight, model.fc6.bias, model.fc7.weight, model.fc7.bias)) * 4
    return towers, data_parallel, fc67


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--crops", type=int, nargs="+", default=[112, 227])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--worker", choices=["one", "towers"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--crop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    results = []
    header = (f"{'configuration':<24} {'crop':>4} {'s/step':>7} {'img/s':>6} {'comm %':>6} "
              f"{'MB sent/step':>12}")
    print(f"batch {args.batch}, width {args.width:g}, median of {args.reps} steps after one warm-up\n")
    print(header)
    print("-" * len(header))
    for crop in args.crops:
        for kind, label in (("one", "one process, 2 threads"), ("one1", "one process, 1 thread"),
                            ("towers", "towers, 2 x 1 thread")):
            r = run_config(kind, args.batch, crop, args.width, args.reps)
            r["label"] = label
            results.append(r)
            comm = f"{100 * r['comm_share']:5.1f}%" if "comm_share" in r else "     -"
            sent = f"{r['bytes_per_step'] / 1e6:12.1f}" if "bytes_per_step" in r else f"{'0':>12}"
            print(f"{label:<24} {crop:>4} {r['step_s']:7.2f} {r['images_per_s']:6.1f} {comm:>6} {sent}", flush=True)
    print()
    for crop in args.crops:
        towers, data_parallel, fc67 = reference_bytes(args.batch, crop, args.width)
        print(f"crop {crop}: the towers send {towers / 1e6:.1f} MB per rank per step (activations and their "
              f"gradients); data-parallel on 2 ranks all-reduces {data_parallel / 1e6:.1f} MB of gradients "
              f"(every rank sends about that much in a ring); fc6 + fc7 alone hold {fc67 / 1e6:.1f} MB of weights.")
        for r in results:
            if r["config"] == "towers" and r["crop"] == crop:
                r["predicted_bytes_per_step"] = towers
                r["data_parallel_bytes_per_step"] = data_parallel
                r["fc6_fc7_weight_bytes"] = fc67
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
