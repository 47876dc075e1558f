"""Speed of the data pipeline: §2 preparation (images/s) and §4.1 training batches (images/s).

    python benchmarks/bench_data.py [--images 500] [--size 256] [--batch 128] [--reps 5]

Preparation decodes Imagenette (the shared ``imagenette-224`` copy, or ``--src``) at S=256 with
all cores; the loader builds training batches of 224 x 224 random crops with reflections and PCA
lighting from the prepared arrays.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
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


if __name__ == "__main__":
    main()
