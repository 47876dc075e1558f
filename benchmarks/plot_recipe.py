"""Draw the reduced-scale recipe's learning curves (docs/recipe.md): ours vs PyTorch, both inits.

Reads the ``log.jsonl`` files written by ``python -m alexnet train --out DIR`` and by
``benchmarks/reference_torch.py --out DIR`` (same keys), draws train loss, val top-1 error and
val top-5 error per epoch on one figure, and prints a Markdown table of every run.

    python benchmarks/plot_recipe.py --root /work/runs/recipe --out docs/figures/recipe_curves.png

Runs are ``LABEL=LOG`` pairs (``--run``), or by default the folders ``ours-kaiming``,
``torch-kaiming``, ``ours-paper``, ``torch-paper`` under ``--root`` (missing ones are skipped).
Colour = initialization, line style = implementation (solid: ours, dashed: PyTorch).
"""

import argparse
import json
import math
import sys
from pathlib import Path

DEFAULT_RUNS = {  # folder under --root: legend label (colour: init and weight draw; dashed: PyTorch)
    "ours-kaiming": "ours (NumPy), He init, inputs / 64",
    "torch-kaiming": "PyTorch, He init (torch's draw), inputs / 64",
    "ours-kaiming-v2": "ours, He init (2nd draw), inputs / 64",
    "torch-kaiming-sameinit": "PyTorch, He init = ours' 2nd draw, inputs / 64",
    "ours-paper": "ours (NumPy), paper init N(0, 0.01), raw inputs",
    "torch-paper": "PyTorch, paper init N(0, 0.01), raw inputs",
    "torch-kaiming-raw": "PyTorch, He init, raw inputs (x 1)",
}
COLOURS = {"kaiming": "tab:blue", "same": "tab:green", "paper": "tab:orange"}


def read_log(path):
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def style(label):
    text = label.lower()
    colour = (
        COLOURS["same"]
        if ("2nd draw" in text or "same" in text)
        else COLOURS["kaiming"]
        if ("kaiming" in text or "he init" in text)
        else COLOURS["paper"]
        if "paper" in text
        else "tab:gray"
    )
    dashed = "torch" in text
    return {
        "color": colour,
        "linestyle": "--" if dashed else "-",
        "marker": "s" if dashed else "o",
        "markersize": 4,
        "linewidth": 1.6,
    }


def pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def table(label, rows):
    lines = [
        f"**{label}**",
        "",
        "| epoch | lr | train loss | train top-1 err % | train top-5 err % | val loss | val top-1 err % "
        "| val top-5 err % | images/s | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.get("train_loss") is None:
            lines.append(
                f"| {r['epoch']} | {r['lr']:g} | diverged (non-finite loss at step "
                f"{r.get('diverged_at_step', '?')}) | | | | | | | |"
            )
            continue
        val_loss = "n/a" if r.get("val_loss") is None else f"{r['val_loss']:.3f}"
        lines.append(
            f"| {r['epoch']} | {r['lr']:g} | {r['train_loss']:.3f} | {pct(r['train_top1_error'])} | "
            f"{pct(r['train_top5_error'])} | {val_loss} | {pct(r.get('val_top1_error'))} | "
            f"{pct(r.get('val_top5_error'))} | {r['images_per_s']:.1f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="/work/runs/recipe", help="folder holding the default run folders")
    p.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="LABEL=LOG",
        help="a run to draw (repeatable); LOG is a log.jsonl or its folder",
    )
    p.add_argument("--out", default="docs/figures/recipe_curves.png")
    p.add_argument("--title", default="AlexNet on Imagenette (S=128, crop 112), CPU: ours (NumPy) vs PyTorch")
    p.add_argument("--num-classes", type=int, default=10, help="for the chance lines")
    args = p.parse_args(argv)

    specs = [r.split("=", 1) for r in args.run] or [
        (label, str(Path(args.root) / name)) for name, label in DEFAULT_RUNS.items()
    ]
    runs = []
    for label, path in specs:
        path = Path(path)
        path = path / "log.jsonl" if path.is_dir() else path
        if not path.is_file():
            print(f"skipping {label}: no {path}", file=sys.stderr)
            continue
        rows = read_log(path)
        if rows:
            runs.append((label, rows))
    if not runs:
        p.error("no logs found")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.8), dpi=90)
    chance_loss = math.log(args.num_classes)
    chance_top1 = 100 * (1 - 1 / args.num_classes)
    chance_top5 = 100 * (1 - min(5, args.num_classes) / args.num_classes)
    panels = [
        ("train_loss", "train loss (training mode, per batch before its update)", 1, chance_loss),
        ("val_top1_error", "val top-1 error % (centre crop)", 100, chance_top1),
        ("val_top5_error", "val top-5 error % (centre crop)", 100, chance_top5),
    ]
    notes = []
    for ax, (key, title, scale, chance) in zip(axes, panels):
        for label, rows in runs:
            pts = [(r["epoch"], scale * r[key]) for r in rows if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), label=label, **style(label))
        ax.axhline(chance, color="gray", linewidth=0.8, linestyle=":")
        ax.annotate(
            f"chance {chance:.3g}",
            (0.01, chance),
            xycoords=("axes fraction", "data"),
            xytext=(0, 2),
            textcoords="offset points",
            color="gray",
            fontsize=8,
        )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for label, rows in runs:
        for r in rows:
            if r.get("train_loss") is None:
                notes.append(
                    f"{label}:\nloss NaN at epoch {r['epoch']}, step {r.get('diverged_at_step', '?')} "
                    f"(diverged, no curve)"
                )
    if notes:
        axes[0].text(
            0.03,
            0.03,
            "\n".join(notes),
            transform=axes[0].transAxes,
            ha="left",
            va="bottom",
            fontsize=7,
            color="tab:red",
        )
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(args.title, fontsize=11)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)", file=sys.stderr)
    for label, rows in runs:
        print(table(label, rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
