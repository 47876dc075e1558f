"""End to end: images/s of our training loop against PyTorch's, same data, same loader, same sitting.

    python benchmarks/bench_end_to_end.py                     # the README's recipe, ~4 min
    python benchmarks/bench_end_to_end.py --steps 30 --rounds 4 --json e2e.json
    python benchmarks/bench_end_to_end.py --compare /path/to/other/checkout   # a third contestant

What runs: ``alexnet.train.Trainer.train_epoch`` (the loop of ``python -m alexnet train``:
loader, SGD step, running statistics, progress bar) against ``train_epoch`` of
``benchmarks/reference_torch.py`` (PyTorch, the same ``data.Loader``, its progress line), on a
subset of ``--src`` prepared at S 128 with ``--steps`` x ``--batch`` training images, crop 112,
batch 128, ``--init kaiming --input-scale 64`` (the README's recipe). Each contestant runs one
epoch of ``--steps`` steps in a fresh process (as a training run would), with ``--threads`` BLAS /
OpenMP threads (OPENBLAS/OMP/MKL_NUM_THREADS; ``torch.set_num_threads``) and the loader's default
threads; the contestants take turns, ``--rounds`` times (the order alternating), so a burst of load
from other processes hits both alike. Validation and checkpoints are not timed (neither
implementation counts them in its images/s).

Every step is split into the parts of ``alexnet.train.LoopClock``: ``data`` (waiting for the
loader's batch), ``step`` (forward, loss, backward, SGD update), ``metrics`` (running loss and
top-1/top-5), ``progress`` (progress bar or line). The first ``--skip`` steps of every process
(first allocations, the loader filling its queue) are left out; the table gives, over the
remaining steps of all rounds, the median of each part and of the whole step, images/s =
batch / median step, the mean-based images/s (images / total time, what a training log reports)
and each round's images/s.

PyTorch runs with ``--torch-python`` (default ``.venv-bench/bin/python`` when it exists); ours
with this interpreter. Without a PyTorch interpreter only ours is timed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("data", "step", "metrics", "progress")


# -- the contestants (each in its own process) ----------------------------------------------------
def cpu_clock():
    """``alexnet.train.LoopClock`` that also records the process's CPU seconds of each step, all
    threads together (``user``; ``sys``: in the kernel, e.g. zeroing freshly mapped pages)."""
    import resource

    from alexnet.train import LoopClock

    class CpuClock(LoopClock):
        def __init__(self):
            super().__init__()
            self._usage = resource.getrusage(resource.RUSAGE_SELF)

        def record(self, *times):
            now = super().record(*times)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.steps[-1].update(
                user=usage.ru_utime - self._usage.ru_utime, sys=usage.ru_stime - self._usage.ru_stime
            )
            self._usage = usage
            return now

    return CpuClock


def child_ours(opts):
    import nn

    if hasattr(
        nn, "configure_blas"
    ):  # as `python -m alexnet` does first (an older tree's nn did it on import)
        nn.configure_blas()
    try:
        from alexnet.config import TrainConfig
    except ImportError:  # --compare with a checkout from before alexnet.config
        return child_ours_before_config(opts)
    from alexnet.train import StopFlag, build_trainer, keep_freed_memory

    keep_freed_memory()  # what `python -m alexnet train` does first
    with tempfile.TemporaryDirectory(prefix="e2e-ours-") as out:
        config = TrainConfig(
            data=str(opts.data),
            crop=opts.crop,
            batch_size=opts.batch,
            init="kaiming",
            input_scale=64.0,
            epochs=1,
            out=out,
            workers=opts.workers,
        )
        trainer = build_trainer(config)
        trainer.val_loader = None  # not timed; saves building it
        with StopFlag(announce=False) as stop:
            trainer.train_epoch(0, stop, clock=cpu_clock()())
            x, y = trainer.loader.make_batch(0, 0, trainer.loader.epoch_order(0)[: opts.batch])
            bare = bare_steps(lambda: trainer.train_step(x, y, 0, 0), opts.bare)
        return trainer.loop_clock.steps, bare


def child_ours_before_config(opts):
    """``child_ours`` for an older checkout (``--compare``): its Trainer takes an argparse
    namespace, and its ``train_epoch`` makes its clock from the module's ``LoopClock``."""
    import alexnet.train
    from alexnet.cli import build_parser

    alexnet.train.LoopClock = cpu_clock()
    if hasattr(alexnet.train, "keep_freed_memory"):
        alexnet.train.keep_freed_memory()
    with tempfile.TemporaryDirectory(prefix="e2e-ours-") as out:
        argv = [
            "train",
            "--data",
            str(opts.data),
            "--crop",
            str(opts.crop),
            "-b",
            str(opts.batch),
            "--init",
            "kaiming",
            "--input-scale",
            "64",
            "--epochs",
            "1",
            "--out",
            out,
        ]
        if opts.workers is not None:
            argv += ["--workers", str(opts.workers)]
        trainer = alexnet.train.Trainer(build_parser().parse_args(argv))
        trainer.val_loader = None
        with alexnet.train.StopFlag(announce=False) as stop:
            trainer.train_epoch(0, stop)
            x, y = trainer.loader.make_batch(0, 0, trainer.loader.epoch_order(0)[: opts.batch])
            bare = bare_steps(lambda: trainer.train_step(x, y, 0, 0), opts.bare)
        return trainer.loop_clock.steps, bare


def child_torch(opts):
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reference_torch as ref

    import data

    torch.set_num_threads(opts.threads)
    torch.manual_seed(0)
    train_set = data.PreparedDataset(opts.data, "train")
    model = ref.AlexNetTorch(train_set.num_classes, opts.crop).reset(
        "kaiming", torch.Generator().manual_seed(0)
    )
    opt = ref.PaperSGD(model.parameters(), 0.01)
    loader = data.Loader(
        train_set,
        opts.batch,
        crop=opts.crop,
        train=True,
        seed=0,
        input_scale=64.0,
        lighting_std=0.1,
        workers=opts.workers,
    )
    loader.set_epoch(0)
    model.train()
    clock = cpu_clock()()
    ref.train_epoch(model, opt, loader, 0, clock=clock)
    x, y = (torch.from_numpy(a) for a in loader.make_batch(0, 0, loader.epoch_order(0)[: opts.batch]))

    def step():
        loss = ref.F.cross_entropy(model(x), y)
        loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return clock.steps, bare_steps(step, opts.bare)


def bare_steps(step, count):
    """Seconds of ``count`` SGD steps on one batch already built, the loader idle (after the epoch)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def run_child(opts):
    steps, bare = child_ours(opts) if opts.child == "ours" else child_torch(opts)
    print("E2E-RESULT " + json.dumps({"steps": steps, "bare": bare}))
    return 0


# -- the parent: prepare, take turns, summarise ----------------------------------------------------
def prepare(src, images, size, cache):
    """A subset of ``src`` at S=``size`` with at least ``images`` training images (cached)."""
    from data import PreparedDataset, prepare_subset

    classes = sorted(p.name for p in (Path(src) / "train").iterdir() if p.is_dir())
    per_class = -(-images // len(classes))
    out = Path(cache) / f"e2e-{Path(src).name}-S{size}-{per_class}x{len(classes)}"
    if not (out / "meta.json").exists():
        print(
            f"preparing {per_class} x {len(classes)} images of {src} at S={size} into {out} ...",
            file=sys.stderr,
            flush=True,
        )
        prepare_subset(src, out, size=size, per_class=per_class, val_per_class=1, quiet=True)
    count = len(PreparedDataset(out, "train"))
    if count < images:
        sys.exit(f"{out} holds {count} training images, fewer than the {images} asked for")
    return out


def contestant_cmd(name, python, workers, opts):
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--child",
        "torch" if name == "torch" else "ours",
        "--data",
        str(opts.data),
        "--crop",
        str(opts.crop),
        "--batch",
        str(opts.batch),
        "--threads",
        str(opts.threads),
        "--bare",
        str(opts.bare),
    ]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


def run_round(name, python, tree, workers, extra_env, opts):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(opts.threads)
    env["PYTHONPATH"] = str(tree)
    env.update(extra_env)
    env.setdefault("MPLBACKEND", "Agg")
    start = time.perf_counter()
    proc = subprocess.run(
        contestant_cmd(name, python, workers, opts), env=env, cwd=str(tree), capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("E2E-RESULT ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(line[len("E2E-RESULT ") :])
    return result["steps"], result["bare"], wall


def summarise(name, rounds, bares, batch, skip):
    kept = [s for steps in rounds for s in steps[skip:]]
    totals = [sum(s[p] for p in PARTS) for s in kept]
    med = statistics.median(totals)
    per_round = [
        batch * len(steps[skip:]) / sum(sum(s[p] for p in PARTS) for s in steps[skip:]) for steps in rounds
    ]
    return {
        "name": name,
        "steps": len(kept),
        "median_step_s": med,
        "images_per_s": batch / med,
        "mean_images_per_s": batch * len(kept) / sum(totals),
        "per_round_images_per_s": per_round,
        "parts_median_s": {p: statistics.median(s[p] for s in kept) for p in PARTS},
        "parts_mean_s": {p: statistics.fmean(s[p] for s in kept) for p in PARTS},
        "cpu_median_s": {p: statistics.median(s.get(p, 0.0) for s in kept) for p in ("user", "sys")},
        "bare_step_median_s": statistics.median(t for b in bares for t in b) if any(bares) else None,
        "first_steps_s": [[round(sum(s[p] for p in PARTS), 3) for s in steps[:skip]] for steps in rounds],
    }


def print_table(results, reference):
    ms = lambda v: f"{1000 * v:,.0f}" if v >= 0.1 else f"{1000 * v:.1f}"  # noqa: E731
    print("\n| | " + " | ".join(r["name"] for r in results) + " |")
    print("|---" * (len(results) + 1) + "|")
    rows = [
        ("images/s (batch / median step)", lambda r: f"{r['images_per_s']:.1f}"),
        ("images/s (mean over the steps)", lambda r: f"{r['mean_images_per_s']:.1f}"),
        ("images/s per round (mean)", lambda r: ", ".join(f"{v:.0f}" for v in r["per_round_images_per_s"])),
        ("median step, ms", lambda r: ms(r["median_step_s"])),
    ]
    rows += [
        (
            f"  {p}, ms (median; mean)",
            lambda r, p=p: f"{ms(r['parts_median_s'][p])}; {ms(r['parts_mean_s'][p])}",
        )
        for p in PARTS
    ]
    rows += [
        (
            "CPU s per step, user; sys (median, all threads)",
            lambda r: f"{r['cpu_median_s']['user']:.2f}; {r['cpu_median_s']['sys']:.3f}",
        )
    ]
    rows += [
        (
            "bare step after the epoch (loader idle), ms (median)",
            lambda r: ms(r["bare_step_median_s"]) if r["bare_step_median_s"] else "-",
        ),
        (
            "first steps (skipped), s",
            lambda r: "; ".join(", ".join(f"{v:.2f}" for v in f) for f in r["first_steps_s"]),
        ),
    ]
    if reference is not None:
        rows.append(
            (
                f"images/s / {reference['name']}'s (median; mean)",
                lambda r: (
                    f"{r['images_per_s'] / reference['images_per_s']:.2f}; "
                    f"{r['mean_images_per_s'] / reference['mean_images_per_s']:.2f}"
                ),
            )
        )
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(r) for r in results) + " |")


def main(argv=None):
    default_src = Path(os.environ.get("ALEXNET_DATA") or ROOT.parent / "shared" / "data") / "imagenette-224"
    venv = ROOT / ".venv-bench" / "bin" / "python"
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--src", default=str(default_src), help="raw image folder to prepare the subset from")
    p.add_argument("--data", default=None, help="an already prepared subset (instead of --src)")
    p.add_argument(
        "--cache",
        default=os.environ.get("ALEXNET_CACHE") or tempfile.gettempdir(),
        help="where the prepared subset is kept between runs",
    )
    p.add_argument("--steps", type=int, default=20, help="training steps per process (one epoch)")
    p.add_argument("--skip", type=int, default=2, help="first steps of every process left out")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--crop", type=int, default=112)
    p.add_argument("--size", type=int, default=128, help="S of the prepared subset")
    p.add_argument("--threads", type=int, default=2, help="BLAS / OpenMP / torch threads of every contestant")
    p.add_argument("--workers", type=int, default=None, help="data loader threads (default: the loader's)")
    p.add_argument(
        "--torch-python",
        default=str(venv) if venv.exists() else None,
        help="an interpreter with torch (none: ours only)",
    )
    p.add_argument("--no-torch", action="store_true", help="time ours (and --compare) only")
    p.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="TREE",
        help="another checkout of this project to time as well (its alexnet/, nn/, data/)",
    )
    p.add_argument(
        "--bare",
        type=int,
        default=3,
        help="then time this many SGD steps on one ready batch, the loader idle (0: none)",
    )
    p.add_argument(
        "--ours-workers",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also time ours with N loader threads (repeatable; 0: batches built in the loop)",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:VAR=VALUE[,VAR=VALUE]",
        help="also time ours with these environment variables (repeatable), e.g. "
        "nohuge:NUMPY_MADVISE_HUGEPAGE=0",
    )
    p.add_argument("--json", default=None, help="write every step's parts and the summary here")
    p.add_argument("--child", choices=["ours", "torch"], default=None, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.child:
        return run_child(opts)
    if opts.skip >= opts.steps:
        p.error("--skip must be smaller than --steps")

    opts.data = str(opts.data or prepare(opts.src, opts.steps * opts.batch, opts.size, opts.cache))
    from data import PreparedDataset

    n = len(PreparedDataset(opts.data, "train"))
    if n > opts.steps * opts.batch:
        print(
            f"note: {opts.data} holds {n} images: {-(-n // opts.batch)} steps per process, not {opts.steps}",
            file=sys.stderr,
        )
    w = opts.workers
    contestants = [("ours", sys.executable, ROOT, w, {})]
    contestants += [(f"ours@{Path(t).name}", sys.executable, Path(t).resolve(), w, {}) for t in opts.compare]
    contestants += [(f"ours -j {v}", sys.executable, ROOT, v, {}) for v in opts.ours_workers]
    for spec in opts.variant:
        name, _, assignments = spec.partition(":")
        extra = dict(a.split("=", 1) for a in assignments.split(",") if a)
        contestants.append((f"ours {name}", sys.executable, ROOT, w, extra))
    if opts.torch_python and not opts.no_torch:
        contestants.append(("torch", opts.torch_python, ROOT, w, {}))
    print(
        f"end to end on {opts.data}: batch {opts.batch}, crop {opts.crop}, {opts.threads} threads, "
        f"{opts.rounds} rounds of {', '.join(c[0] for c in contestants)} (order alternating), "
        f"first {opts.skip} steps of each left out",
        flush=True,
    )
    runs = {c[0]: [] for c in contestants}
    bares = {c[0]: [] for c in contestants}
    for k in range(opts.rounds):
        order = contestants if k % 2 == 0 else contestants[::-1]
        for name, python, tree, workers, extra_env in order:
            steps, bare, wall = run_round(name, python, tree, workers, extra_env, opts)
            runs[name].append(steps)
            bares[name].append(bare)
            kept = steps[opts.skip :]
            rate = opts.batch * len(kept) / sum(sum(s[q] for q in PARTS) for s in kept)
            bare_ms = f", bare step {1000 * sorted(bare)[len(bare) // 2]:.0f} ms" if bare else ""
            cpu = "".join(
                f", {q} {statistics.median(st.get(q, 0.0) for st in kept):.3f} s" for q in ("user", "sys")
            )
            print(
                f"round {k + 1}: {name:>12s} {rate:6.1f} images/s over {len(kept)} steps{bare_ms}{cpu} "
                f"(process {wall:.0f} s)",
                flush=True,
            )
            if opts.json:  # after every process: a run cut short keeps what it measured
                Path(opts.json).write_text(
                    json.dumps({"options": vars(opts), "steps": runs, "bare_steps": bares}) + "\n"
                )
    results = [summarise(name, runs[name], bares[name], opts.batch, opts.skip) for name, *_ in contestants]
    reference = next((r for r in results if r["name"] == "torch"), results[0] if len(results) > 1 else None)
    print_table(results, reference)
    if opts.json:
        Path(opts.json).write_text(
            json.dumps(
                {
                    "options": {k: v for k, v in vars(opts).items()},
                    "results": results,
                    "steps": runs,
                    "bare_steps": bares,
                },
                indent=1,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
