"""Speed of the data pipeline: §2 preparation (images/s) and §4.1 training batches (images/s).

    python benchmarks/bench_data.py [--images 500] [--size 256] [--batch 128] [--reps 5]
    python benchmarks/bench_data.py --crop 227 --workers 2 --host-work     # the host's share

Preparation decodes Imagenette (the shared ``imagenette-224`` copy, or ``--src``) at S=256 with
all cores; the loader builds training batches of 224 x 224 random crops with reflections and PCA
lighting from the prepared arrays.

``--host-work``: what the loader's threads do per training batch, in turns within each
repetition (so both see the same machine load): the float32 batch (crops, mean, lighting, scale:
the work of ``device="cpu"``, and of every device before the float part moved to the GPU) and the
uint8 part alone (crops and reflections into a reused buffer: the host's work with
``device="cuda"``, whose float part runs on the GPU). Medians and their ratio.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data import Loader, PreparedDataset, prepare_subset  # noqa: E402


def main():
    default_src = Path(
        os.environ.get("ALEXNET_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", default=str(default_src / "imagenette-224"), help="raw image folder")
    parser.add_argument("--images", type=int, default=500, help="training images to prepare (default 500)")
    parser.add_argument("--size", type=int, default=256, help="S (default 256)")
    parser.add_argument("--crop", type=int, default=224, help="C (default 224)")
    parser.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    parser.add_argument("--reps", type=int, default=5, help="loader repetitions; the median is reported")
    parser.add_argument("--workers", type=int, default=None, help="processes / threads (default: all cores)")
    parser.add_argument(
        "--host-work", action="store_true", help="only the loader threads' work: float32 vs uint8 batches"
    )
    args = parser.parse_args()

    src = Path(args.src)
    if not src.is_dir():
        sys.exit(f"no source folder {src}; pass --src")
    classes = sorted(p.name for p in (src / "train").iterdir() if p.is_dir())
    per_class = -(-args.images // len(classes))
    tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
    try:
        start = time.perf_counter()
        out = prepare_subset(
            src,
            tmp / "prepared",
            size=args.size,
            per_class=per_class,
            val_per_class=0,
            workers=args.workers,
            quiet=True,
        )
        seconds = time.perf_counter() - start
        ds = PreparedDataset(out)
        print(
            f"prepare: {len(ds)} images at S={args.size} in {seconds:.2f} s = "
            f"{len(ds) / seconds:.0f} images/s ({os.cpu_count()} cores)"
        )

        loader = Loader(ds, args.batch, crop=args.crop, train=True, workers=args.workers, drop_last=True)
        if args.host_work:
            host_work(loader, args.reps)
            return
        rates = []
        for rep in range(args.reps):
            loader.set_epoch(rep)
            start = time.perf_counter()
            count = 0
            for x, _ in loader:
                count += len(x)
            rates.append(count / (time.perf_counter() - start))
        print(
            f"loader (train, {args.crop} crops, flips, PCA lighting, batch {args.batch}, "
            f"{loader.workers} threads): median {np.median(rates):.0f} images/s "
            f"(reps: {', '.join(f'{r:.0f}' for r in rates)})"
        )
        for name, kw in (("eval centre crop", {}), ("eval ten crops", {"ten_crop": True})):
            ev = Loader(ds, 32, crop=args.crop, train=False, workers=args.workers, **kw)
            start = time.perf_counter()
            count = sum(len(x) for x, _ in ev)
            print(f"loader ({name}): {count / (time.perf_counter() - start):.0f} images/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def threaded_rate(loader, job, epoch):
    """Images/s of ``job(epoch, k, indices)`` over one epoch's batches in the loader's threads."""
    order = loader.epoch_order(epoch)
    size = loader.batch_size
    batches = [order[k * size : (k + 1) * size] for k in range(len(loader))]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=loader.workers) as pool:
        count = sum(len(part) for part in pool.map(job, [epoch] * len(batches), range(len(batches)), batches))
    return count / (time.perf_counter() - start)


def host_work(loader, reps):
    """The float32 batch vs the uint8 part, in turns (see the module docstring)."""
    slots = [np.empty((loader.batch_size, 3, loader.crop, loader.crop), np.uint8) for _ in range(4)]

    def float_batch(epoch, k, indices):
        return loader.make_batch(epoch, k, indices)[1]

    def uint8_part(epoch, k, indices):
        return loader.host_part(epoch, k, indices, out=slots[k % len(slots)][: len(indices)])["labels"]

    rates = {"float32 batch (host)": [], "uint8 part (host)": []}
    for rep in range(reps):
        for name, job in zip(rates, (float_batch, uint8_part)):
            rates[name].append(threaded_rate(loader, job, rep))
    for name, values in rates.items():
        print(
            f"loader threads, {name}, {loader.crop} crops, batch {loader.batch_size}, {loader.workers} threads: "
            f"median {np.median(values):.0f} images/s (reps: {', '.join(f'{r:.0f}' for r in values)})"
        )
    ratios = np.array(rates["uint8 part (host)"]) / np.array(rates["float32 batch (host)"])
    print(
        f"uint8 part / float32 batch: median {np.median(ratios):.2f}x (per rep: {', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
