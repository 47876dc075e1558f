"""What several processes cost: one AlexNet training step at batch 128 in each scheme.

    python benchmarks/bench_distributed.py                          # crops 112 and 227, every scheme
    python benchmarks/bench_distributed.py --crops 112 --reps 3 --json out.json
    python benchmarks/bench_distributed.py --schemes one-process,data-parallel

Schemes (each row launched as its own job, ``mpiexec -n RANKS`` when RANKS > 1, with
OMP/OPENBLAS/MKL_NUM_THREADS set to THREADS in every process, so that the two cores are used
either way):

* ``one-process``: one process, 2 BLAS threads, the whole batch of 128;
* ``data-parallel``: 2 ranks x 1 thread, 64 images each, ONE all-reduce of every gradient per
  step (alexnet/parallel/data_parallel.py, the code ``mpiexec -n 2 python -m alexnet train`` runs).
* ``towers``: 2 ranks x 1 thread, the two towers of §3.2 (alexnet/parallel/towers.py, what
  ``mpiexec -n 2 python -m alexnet train --towers`` runs): both ranks read all 128 images, each
  holds half of every layer, and they all-gather activations at conv3, fc6, fc7, fc8 and the logits
  (reduce-scatter of their gradients backward). ``sent MB/rank`` is then what one rank sends of
  those activations and gradients; ``params`` is per rank.

Per row: median time per step (forward, loss, backward, gradient exchange, SGD) and images/s;
the share of the step spent in the all-reduce (measured after a barrier, so waiting for the
slower rank is reported separately as ``wait``); the payload each rank hands to MPI per step and
the bytes each rank SENDS with a ring (or reduce-scatter + all-gather) all-reduce,
2 (N - 1) / N x payload. The network is the paper's (1000 classes, two towers); the inputs are
random (the loader is not timed: it runs in background threads during training).

Adding a scheme (e.g. the two towers of §3.2 as two processes): write
``def run_myscheme(args, comm) -> dict`` returning the keys that :func:`run_one_process` returns
and add ``"myscheme": Scheme(ranks, threads, run_myscheme, "description")`` to ``SCHEMES``.

On a 2-core machine nothing gets faster with more processes; the numbers show what each scheme
costs. Every time is a median after one warm-up step; trust ratios within one run.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

Scheme = namedtuple("Scheme", "ranks threads run description")
MARKER = "BENCH-RESULT "


def _model_and_data(args, rows, seed=0):
    import numpy as np

    from alexnet import AlexNet
    from nn import SGD, SoftmaxCrossEntropyLoss

    model = AlexNet(num_classes=1000, crop=args.crop, groups=2, init="kaiming", seed=seed)
    model.conv1.input_grad = False  # as the trainer does
    optimizer = SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((rows, 3, args.crop, args.crop), dtype=np.float32)
    y = rng.integers(0, 1000, rows)
    return model, optimizer, SoftmaxCrossEntropyLoss(), x, y


def _summary(step_times, comm_times, wait_times, payload, ranks, batch, params):
    step = statistics.median(step_times)
    comm = statistics.median(comm_times) if comm_times else 0.0
    wait = statistics.median(wait_times) if wait_times else 0.0
    return {
        "step_s": step,
        "images_per_s": batch / step,
        "comm_s": comm,
        "comm_share": comm / step,
        "wait_s": wait,
        "wait_share": wait / step,
        "payload_bytes": payload,
        "sent_bytes_per_rank": 2 * (ranks - 1) / ranks * payload if ranks > 1 else 0,
        "parameters": params,
        "step_times": step_times,
    }


def _timed_collective(comm, real, timings):
    """``real`` (a collective of ``comm``) wrapped to add, per call, the time spent at a barrier
    first to ``timings["wait"]`` (waiting for the slower rank, not communication) and the
    collective's own time to ``timings["comm"]``."""

    def call(*args, **kwargs):
        t0 = time.perf_counter()
        comm.barrier()
        t1 = time.perf_counter()
        result = real(*args, **kwargs)
        timings["wait"] += t1 - t0
        timings["comm"] += time.perf_counter() - t1
        return result

    return call


def _timed_steps(args, comm, timings, one_step):
    """Run ``one_step`` --warmup + --reps times, all ranks starting together; returns each timed
    step's duration (the slowest rank's), communication and waiting seconds, and the bytes
    reduced in the last step."""
    steps, comms, waits = [], [], []
    payload_before = 0
    for rep in range(args.warmup + args.reps):
        comm.barrier()
        timings.update(comm=0.0, wait=0.0)
        payload_before = comm.bytes_reduced
        start = time.perf_counter()
        one_step()
        elapsed = time.perf_counter() - start
        if rep >= args.warmup:
            steps.append(elapsed)
            comms.append(timings["comm"])
            waits.append(timings["wait"])
    payload = comm.bytes_reduced - payload_before
    steps = [max(comm.comm.allgather(t)) for t in steps]  # the step time of the job is the slowest rank's
    return steps, comms, waits, payload


def run_one_process(args, comm):
    """The whole batch in one process (the baseline)."""
    model, optimizer, criterion, x, y = _model_and_data(args, args.batch)
    times = []
    for rep in range(args.warmup + args.reps):
        start = time.perf_counter()
        criterion.forward(model.forward(x), y)
        optimizer.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()
        if rep >= args.warmup:
            times.append(time.perf_counter() - start)
    return _summary(times, [], [], 0, 1, args.batch, model.num_parameters())


def run_data_parallel(args, comm):
    """Each rank its share of the batch, gradients averaged with one all-reduce
    (alexnet/parallel/data_parallel.py)."""
    from alexnet.parallel import DataParallel, shard_rows

    start_row, stop_row = shard_rows(args.batch, comm.rank, comm.size)
    model, optimizer, criterion, x, y = _model_and_data(args, stop_row - start_row, seed=comm.rank)
    dp = DataParallel(comm, model, optimizer)
    dp.broadcast_state()
    timings = {"comm": 0.0, "wait": 0.0}
    comm.allreduce_mean_ = _timed_collective(comm, comm.allreduce_mean_, timings)

    def forward_backward(x, y):
        loss = criterion.forward(model.forward(x), y)
        optimizer.zero_grad()
        model.backward(criterion.backward())
        return loss, None

    def one_step():
        dp.step(forward_backward, x, y, (start_row, stop_row, args.batch), False)
        optimizer.step()

    steps, comms, waits, payload = _timed_steps(args, comm, timings, one_step)
    return _summary(steps, comms, waits, payload, comm.size, args.batch, model.num_parameters())


def run_towers(args, comm):
    """The two towers of §3.2 (alexnet/parallel/towers.py, what ``train --towers`` runs): both ranks
    read the whole batch, each holds half of every layer, activations are all-gathered at conv3, fc6, fc7,
    fc8 and the logits, their gradients reduce-scattered back. ``allreduce`` is the time inside
    those collectives, ``wait`` the time spent at a barrier before each (the slower rank)."""
    from alexnet.parallel import TowerAlexNet
    from nn import SGD

    model, _, criterion, x, y = _model_and_data(args, args.batch)
    tower = TowerAlexNet(comm, reference=model)
    del model
    optimizer = SGD(tower.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)
    timings = {"comm": 0.0, "wait": 0.0}
    comm.allgather = _timed_collective(comm, comm.allgather, timings)
    comm.reduce_scatter = _timed_collective(comm, comm.reduce_scatter, timings)
    losses = []

    def one_step():
        losses.append(criterion.forward(tower.forward(x), y))
        optimizer.zero_grad()
        tower.backward(criterion.backward())
        optimizer.step()

    steps, comms, waits, payload = _timed_steps(args, comm, timings, one_step)
    loss = losses[-1]
    row = _summary(steps, comms, waits, payload, comm.size, args.batch, tower.num_parameters())
    # what one rank sends: its half of each gathered activation forward, the other half's gradient back
    row["sent_bytes_per_rank"] = sum(t["bytes_forward"] + t["bytes_backward"] for t in tower.traffic())
    row["loss"] = float(loss)
    return row


SCHEMES = {
    "one-process": Scheme(1, 2, run_one_process, "1 process x 2 BLAS threads"),
    "data-parallel": Scheme(2, 1, run_data_parallel, "2 ranks x 1 thread, one all-reduce per step"),
    "towers": Scheme(2, 1, run_towers, "2 ranks x 1 thread, the two towers of §3.2 (model-parallel)"),
}


def worker(args):
    from alexnet.parallel import get_communicator

    comm = get_communicator()
    result = SCHEMES[args.worker].run(args, comm)
    if comm.is_root:
        result.update(
            scheme=args.worker,
            crop=args.crop,
            batch=args.batch,
            ranks=comm.size,
            threads=os.environ.get("OPENBLAS_NUM_THREADS"),
        )
        print(MARKER + json.dumps(result), flush=True)


def launch(name, crop, args):
    scheme = SCHEMES[name]
    threads = str(scheme.threads)
    env = dict(
        os.environ,
        OMP_NUM_THREADS=threads,
        OPENBLAS_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    reps = args.reps if crop < 200 else args.reps_227
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--crop",
        str(crop),
        "--batch",
        str(args.batch),
        "--reps",
        str(reps),
        "--warmup",
        str(args.warmup),
    ]
    if scheme.ranks > 1:
        import shutil

        mpiexec = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
        command = [mpiexec, "-n", str(scheme.ranks)] + command
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    if result.returncode or not lines:
        raise RuntimeError(f"{name} at crop {crop} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[0][len(MARKER) :])


def pool(parts):
    """One row from several runs of it: medians over every timed step of every run."""
    if len(parts) == 1:
        return parts[0]
    row = dict(parts[0])
    for key in ("step_s", "comm_s", "wait_s"):
        row[key] = statistics.median(p[key] for p in parts)
    row["images_per_s"] = row["batch"] / row["step_s"]
    row["comm_share"] = statistics.median(p["comm_share"] for p in parts)
    row["wait_share"] = statistics.median(p["wait_share"] for p in parts)
    row["step_times"] = [t for p in parts for t in p["step_times"]]
    row["rounds"] = len(parts)
    return row


#: Networks of the projection: (name, GPUs, bandwidth of the ring's slowest link in bytes/s,
#: per-hop latency in s). Assumptions, not measurements (see docs/distributed.md).
NETWORKS = (
    ("8 GPUs, one node, NVLink/NVSwitch (~300 GB/s per GPU)", 8, 300e9, 5e-6),
    ("8 machines x 1 GPU, 100 Gb/s InfiniBand", 8, 12.5e9, 5e-6),
    ("64 GPUs = 8 nodes x 8, one 100 Gb/s NIC per node", 64, 12.5e9, 5e-6),
    ("64 GPUs = 8 nodes x 8, 8 x 100 Gb/s NICs per node", 64, 100e9, 5e-6),
)


def ring_allreduce_seconds(nbytes, gpus, bandwidth, latency):
    """NCCL's ring all-reduce: each GPU sends (and receives) 2 (N - 1) / N x bytes, in 2 (N - 1) hops."""
    return 2 * (gpus - 1) / gpus * nbytes / bandwidth + 2 * (gpus - 1) * latency


def projection(compute_s, nbytes, batch=128):
    """Rows of the paper projection: per-step time and scaling efficiency of data-parallel training
    without overlap (as alexnet/parallel/data_parallel.py does it: the all-reduce follows the backward
    pass).
    weak: every GPU keeps ``batch`` images (global batch = N x batch); strong: the global batch stays
    ``batch`` (the paper's 128), each GPU computes batch / N (compute assumed to shrink linearly:
    optimistic for small per-GPU batches)."""
    rows = []
    for name, gpus, bandwidth, latency in NETWORKS:
        comm = ring_allreduce_seconds(nbytes, gpus, bandwidth, latency)
        weak, strong = compute_s, compute_s / gpus
        rows.append(
            {
                "network": name,
                "gpus": gpus,
                "allreduce_s": comm,
                "weak_step_s": weak + comm,
                "weak_efficiency": weak / (weak + comm),
                "strong_step_s": strong + comm,
                "strong_efficiency": strong / (strong + comm),
                "strong_speedup": compute_s / (strong + comm),
            }
        )
    return rows


def print_projection(compute_s, nbytes):
    rows = projection(compute_s, nbytes)
    print(
        f"\nprojection: compute {1e3 * compute_s:.1f} ms per 128 images, all-reduce of {nbytes / 1e6:.1f} MB"
    )
    print(
        format_table_plain(
            ["network", "all-reduce ms", "weak: ms/step", "eff", "strong: ms/step", "eff", "speed-up"],
            [
                [
                    r["network"],
                    f"{1e3 * r['allreduce_s']:.2f}",
                    f"{1e3 * r['weak_step_s']:.1f}",
                    f"{100 * r['weak_efficiency']:.1f}%",
                    f"{1e3 * r['strong_step_s']:.2f}",
                    f"{100 * r['strong_efficiency']:.1f}%",
                    f"{r['strong_speedup']:.2f}x",
                ]
                for r in rows
            ],
        )
    )
    return rows


def format_table_plain(headers, rows):
    from _common import format_table

    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crops", default="112,227", help="comma-separated input sides (default 112,227)")
    parser.add_argument("--batch", type=int, default=128, help="global batch (default 128, §5)")
    parser.add_argument("--reps", type=int, default=3, help="timed steps per row at crops < 200 (median)")
    parser.add_argument("--reps-227", type=int, default=2, dest="reps_227", help="timed steps at crop 227")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every row this many times, the schemes taking turns (medians pooled)",
    )
    parser.add_argument("--schemes", default=",".join(SCHEMES), help=f"subset of {','.join(SCHEMES)}")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per row before giving up")
    parser.add_argument("--json", default=None, metavar="PATH", help="also save the results as JSON")
    parser.add_argument(
        "--project",
        type=float,
        default=None,
        metavar="MS",
        help="only print the projection to 8 and 64 GPUs for a compute time of MS ms per 128 images",
    )
    parser.add_argument(
        "--project-bytes",
        type=float,
        default=60_965_224 * 4,
        metavar="B",
        help="bytes all-reduced per step in the projection (default: AlexNet's 60,965,224 float32)",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--crop", type=int, default=112, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.project is not None:
        print_projection(args.project / 1e3, args.project_bytes)
        return 0

    from _common import environment_info, format_table, write_json

    names = [n.strip() for n in args.schemes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCHEMES]
    if unknown:
        parser.error(f"unknown scheme(s) {unknown}; choose from {list(SCHEMES)}")
    runs = {}
    for round_ in range(args.rounds):
        for crop in [int(c) for c in args.crops.split(",")]:
            for name in names:  # taking turns, so a burst of load from elsewhere hits every scheme
                print(
                    f"round {round_ + 1}/{args.rounds}, crop {crop}: {name} ({SCHEMES[name].description}) ...",
                    file=sys.stderr,
                    flush=True,
                )
                runs.setdefault((crop, name), []).append(launch(name, crop, args))
    results = [pool(parts) for parts in runs.values()]
    rows = []
    for r in results:
        base = (
            next(b for b in results if b["crop"] == r["crop"] and b["scheme"] == "one-process")
            if any(b["scheme"] == "one-process" for b in results)
            else r
        )
        rows.append(
            [
                r["scheme"],
                str(r["crop"]),
                f"{r['ranks']}x{r['threads']}",
                f"{r['step_s']:.2f}",
                f"{r['images_per_s']:.1f}",
                f"{base['step_s'] / r['step_s']:.2f}",
                f"{100 * r['comm_share']:.1f}%",
                f"{100 * r['wait_share']:.1f}%",
                f"{r['payload_bytes'] / 1e6:.1f}",
                f"{r['sent_bytes_per_rank'] / 1e6:.1f}",
                f"{r['parameters'] / 1e6:.1f}M",
            ]
        )
    print(
        format_table(
            [
                "scheme",
                "crop",
                "ranks x thr",
                "s/step",
                "img/s",
                "speed vs 1",
                "allreduce",
                "wait",
                "payload MB",
                "sent MB/rank",
                "params",
            ],
            rows,
        )
    )
    if args.json:
        write_json(args.json, {"environment": environment_info(), "batch": args.batch, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
