"""The training curves: loss and top-1 / top-5 error per epoch, for train and validation."""

from __future__ import annotations

import os

from matplotlib.figure import Figure  # draws to files without pyplot or a display

from nn import atomic_write


def plot_curves(history: list[dict], path: str | os.PathLike) -> str | os.PathLike:
    """Draw ``history`` (a list of per-epoch dicts as in log.jsonl) into the PNG ``path``.

    Left: cross-entropy loss; right: top-1 (solid) and top-5 (dashed) error in percent.
    Written to a temporary file and renamed, so a reader never sees half a PNG.
    """
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_err = fig.subplots(1, 2)
    for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
        if history and all(h.get(f"{split}_top1_error") is not None for h in history):
            ax_loss.plot(epochs, [h.get(f"{split}_loss") for h in history], "o-", color=color, label=split)
            ax_err.plot(
                epochs,
                [100 * h[f"{split}_top1_error"] for h in history],
                "o-",
                color=color,
                label=f"{split} top-1",
            )
            ax_err.plot(
                epochs,
                [100 * h[f"{split}_top5_error"] for h in history],
                "o--",
                color=color,
                label=f"{split} top-5",
            )
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="top-1 / top-5 error", ylim=(0, 100))
    for ax in (ax_loss, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    # The fixed temporary name is one rundir.remove_stale_temporaries knows (a killed save's leftover).
    with atomic_write(path, "wb", tmp_path=f"{path}.tmp.png") as handle:
        fig.savefig(handle, format="png", dpi=100)
    return path
