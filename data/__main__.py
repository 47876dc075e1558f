"""Command line: ``python -m data {prepare,download,info,verify} ...`` (see ``--help`` of each)."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def _positive_fraction(text):
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be in [0, 1)")
    return value


def _image_size(text):
    """``--size S``, refused before anything is read or created (see data.prepare.check_size)."""
    from .prepare import MAX_SIZE, MIN_SIZE, SIZE_RULE

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not MIN_SIZE <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{value} is out of range: {SIZE_RULE}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data",
        description="Reduced ImageNet subsets with the AlexNet paper's preprocessing (§2: shorter "
        "side to S, central S x S patch; per-pixel mean; RGB PCA for §4.1).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "prepare",
        help="prepare a subset of a raw image folder into uint8 .npy arrays",
        description="Prepare SRC (ImageNet/Imagenette train+val folders, Tiny-ImageNet, "
        "an ILSVRC flat val folder with ground truth, or a flat "
        "<wnid>_<name>.JPEG folder) into OUT.",
    )
    p.add_argument("src", help="raw image folder")
    p.add_argument("out", help="output folder (appears only when complete)")
    choose = p.add_mutually_exclusive_group()
    choose.add_argument("--classes", help="comma-separated wnids to keep")
    choose.add_argument("--num-classes", type=int, metavar="K", help="keep the first K sorted wnids")
    choose.add_argument("--random-classes", type=int, metavar="K", help="keep K wnids drawn with --seed")
    p.add_argument("--seed", type=int, default=0, help="seed for --random-classes (default 0)")
    p.add_argument("--per-class", type=int, metavar="N", help="at most N training images per class")
    p.add_argument("--val-per-class", type=int, metavar="N", help="at most N validation images per class")
    p.add_argument(
        "--val-fraction",
        type=_positive_fraction,
        metavar="F",
        help="for a source with a single split: give this fraction of each class to val",
    )
    p.add_argument(
        "--size",
        type=_image_size,
        default=256,
        metavar="S",
        help="side S of the stored images, 1 to 1024 (default 256, §2)",
    )
    p.add_argument("--workers", type=int, help="decoding processes (default: all cores; 0/1 = in-process)")
    p.add_argument("--strict", action="store_true", help="fail on an unreadable image instead of skipping it")
    p.add_argument(
        "--overwrite", action="store_true", help="replace OUT if it holds a subset made with other arguments"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")

    d = sub.add_parser(
        "download",
        help="download a public dataset into the cache",
        description="Download and extract a public dataset (offline: fails at once; "
        "then point --data at a local copy).",
    )
    d.add_argument("name", choices=["imagenette"], help="dataset to download")
    d.add_argument(
        "--variant",
        choices=["160", "320", "full"],
        default="320",
        help="Imagenette variant: short side 160, 320 px, or full size (default 320)",
    )
    d.add_argument("--cache", help="cache folder (default $ALEXNET_CACHE or ~/.cache/alexnet-from-scratch)")
    d.add_argument("--timeout", type=float, default=10.0, help="network timeout in seconds (default 10)")
    d.add_argument(
        "--prepare", action="store_true", help="also prepare it (all images, S=--size) in the cache"
    )
    d.add_argument("--size", type=_image_size, default=256, help="S for --prepare (default 256)")

    i = sub.add_parser("info", help="describe a prepared subset (after the checks made on opening)")
    i.add_argument("path", help="prepared subset folder")

    v = sub.add_parser(
        "verify",
        help="check a prepared subset: structure, labels and SHA-256 checksums",
        description="Check every file of a prepared subset against meta.json and the "
        "others (shapes, counts, S, label range, file sizes), then recompute "
        "the SHA-256 of every array and compare it with the one recorded at "
        "preparation time. Exit 0: all agree (or the subset predates "
        "checksums, which is said); 1: a checksum differs; 2: a file is "
        "missing, damaged or inconsistent.",
    )
    v.add_argument("path", help="prepared subset folder")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from .prepare import ClassSelectionError, PrepareTerminated

    try:
        code = _run(args)
        sys.stdout.flush()  # a reader that left makes this raise here, not at interpreter exit
        return code
    except ClassSelectionError as exc:  # name this command's flag (train calls the same code --classes)
        print(f"error: --{exc.option.replace('_', '-')} {exc.value}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `python -m data info X | head`: the reader left; stop quietly, as cat does
        _drop_stdout()
        return 128 + signal.SIGPIPE
    except (ValueError, RuntimeError, OSError) as exc:  # OSError: FileNotFoundError, PermissionError...
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PrepareTerminated:
        print(
            f"python -m data {args.command}: stopped by SIGTERM; the partial output was removed",
            file=sys.stderr,
        )
        return 128 + 15
    except KeyboardInterrupt:
        done = "; the partial output was removed" if args.command == "prepare" else ""
        print(f"python -m data {args.command}: interrupted{done}", file=sys.stderr)
        return 130


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run(args) -> int:
    if args.command == "prepare":
        from .prepare import prepare_subset

        prepare_subset(
            args.src,
            args.out,
            classes=args.classes,
            num_classes=args.num_classes,
            random_classes=args.random_classes,
            seed=args.seed,
            per_class=args.per_class,
            val_per_class=args.val_per_class,
            size=args.size,
            val_fraction=args.val_fraction,
            workers=args.workers,
            strict=args.strict,
            overwrite=args.overwrite,
            quiet=args.quiet,
        )
        return 0
    if args.command == "download":
        from .download import DownloadError, download_imagenette, resolve

        try:
            folder = download_imagenette(args.variant, cache=args.cache, timeout=args.timeout)
            print(folder)
            if args.prepare:
                print(resolve(folder, cache=args.cache, size=args.size))
        except DownloadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "info":
        from .dataset import PreparedDataset

        for split in ("train", "val"):
            ds = PreparedDataset(args.path, split)
            print(ds)
        meta = ds.meta
        print(f"source: {meta['source']} ({meta.get('source_layout', '')})")
        print(
            f"classes: {', '.join(f'{w} {n}' for w, n in zip(meta['wnids'][:10], meta['class_names'][:10]))}"
            + (" ..." if len(meta["wnids"]) > 10 else "")
        )
        print(f"PCA eigenvalues: {ds.eigvals.tolist()}; skipped files: {len(meta.get('skipped', []))}")
        for entry in meta.get("dropped_classes") or []:
            print(f"dropped class {entry['wnid']} ({entry['name']}): {entry['reason']}")
        for message in meta.get("warnings") or []:  # recorded by prepare: what cannot work
            print(f"warning: {message}")
        print(
            "checksums: "
            + (
                f"{meta.get('checksum_algorithm', 'sha256')} of {len(meta['checksums'])} "
                "arrays recorded (python -m data verify checks them)"
                if meta.get("checksums")
                else "unavailable (prepared before they were recorded)"
            )
        )
        return 0
    if args.command == "verify":
        return _verify(args.path)
    return 1


def _verify(path) -> int:
    from pathlib import Path

    from .dataset import ARRAY_FILES, check_labels, check_subset, verify_checksums

    meta = check_subset(path)
    for split in ("train", "val"):
        check_labels(Path(path).expanduser(), split, meta)
    print(
        f"{path}: {len(ARRAY_FILES)} arrays agree with meta.json (shapes, counts, S={meta['size']}, "
        f"{len(meta['wnids'])} classes, label range, file sizes)"
    )
    result = verify_checksums(path, meta)
    if result is None:
        print(
            f"{path}: checksums unavailable: prepared before checksums were recorded "
            "(prepare again with --overwrite to record them)"
        )
        return 0
    bad = 0
    for name, (recorded, actual) in result.items():
        if recorded == actual:
            print(f"  {name}: OK")
        else:
            bad += 1
            print(f"  {name}: MISMATCH (recorded {recorded or 'nothing'}, found {actual})")
    print(
        f"{path}: "
        + (f"{bad} checksum(s) differ: the files changed since preparation" if bad else "all checksums match")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
