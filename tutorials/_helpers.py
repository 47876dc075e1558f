"""Plumbing shared by the tutorial notebooks (they run with this folder as their working directory and
``import _helpers``): where to look for photographs, the exercises' grader, and the longer figures, so
that every cell a reader reads is about the idea.

The notebooks look, in order, in ``$ALEXNET_DATA``, in ``shared/data`` beside the repository, and in the
Imagenette folders that ``python -m data download imagenette`` extracts into the cache.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def data_roots():
    """The existing folders to search for data, in the order above."""
    roots = []
    if os.environ.get("ALEXNET_DATA"):
        roots.append(Path(os.environ["ALEXNET_DATA"]).expanduser())
    roots.append(REPO.parent / "shared" / "data")
    try:
        from data.download import cache_dir

        extracted = cache_dir() / "extracted"
        roots += sorted(extracted.glob("imagenette2*")) if extracted.is_dir() else []
    except ImportError:  # the repository root is not on the path: only the two folders above
        pass
    return [root for root in roots if root.is_dir()]


def find_dataset(names=("imagenette-224", "imagenette2*"), inside="train"):
    """The first dataset folder (``<folder>/train/<class>/...JPEG``) among the data roots: for each root,
    its subfolders matching ``names`` (glob patterns, in order), then the root itself (``$ALEXNET_DATA``
    may point at a dataset directly). ``inside`` is the path the folder must contain, e.g.
    ``"train/n01440764"`` to require one class. Returns a Path, or None when there is none."""
    for root in data_roots():
        trees = [tree for name in names for tree in sorted(root.glob(name))] + [root]
        for tree in trees:
            if (tree / inside).is_dir():
                return tree
    return None


def sample_photos():
    """The loose ImageNet photographs of the first data root with an ``imagenet-samples`` folder
    (sorted paths; an empty list when there are none)."""
    for root in data_roots():
        photos = sorted((root / "imagenet-samples").glob("*.JPEG"))
        if photos:
            return photos
    return []


# -- exercises -----------------------------------------------------------------------------------------
# The graders live in graders/ (one module per notebook), where tests/ can run them against wrong answers.
from graders import grade, relative_error  # noqa: E402,F401  (re-exported for the notebooks)


# -- figures and measurements that would otherwise fill a cell --------------------------------------------
def layer_signals(model, x, labels, loss):
    """One training step's signals, layer by layer, without changing the model's weights: runs ``x`` through
    the children of a Sequential model one by one, then the loss's backward and each layer's backward in
    reverse. Returns ``{layer name: (its output, dL/d(its output))}`` for every child, in order, and resets
    the parameters' gradients."""
    outputs, h = {}, x
    for name, layer in model.named_children():
        h = layer.forward(h)
        outputs[name] = h
    loss.forward(h, labels)
    grad, grads = loss.backward(), {}
    for name, layer in reversed(model.named_children()):
        grads[name] = grad
        grad = layer.backward(grad)
    model.zero_grad()
    return {name: (outputs[name], grads[name]) for name in outputs}


def plot_signal_histograms(runs, layers, title):
    """A grid of histograms of log10|value|: one row per layer in ``layers``, activations (the layer's
    output) on the left and gradients (dL/d output) on the right; one line per entry of ``runs``, a dict
    ``{label: layer_signals(...) result}``. Zeros (ReLU's inactive units) are left out and counted in the
    legend."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(len(layers), 2, figsize=(10, 1.25 * len(layers) + 0.8), sharex="col")
    bins = np.linspace(-14, 4, 73)
    for row, name in enumerate(layers):
        for col, what in enumerate(("activation", "gradient")):
            ax = axes[row, col]
            for (label, signals), style in zip(runs.items(), ["C0--", "C0-", "C3--", "C3-"]):
                values = np.abs(np.asarray(signals[name][col], dtype=np.float64)).ravel()
                nonzero = values[values > 0]
                counts, _ = np.histogram(np.log10(nonzero), bins=bins)
                ax.plot(
                    bins[:-1],
                    counts / max(len(values), 1),
                    style[2:],
                    color=style[:2],
                    lw=1.2,
                    label=f"{label} ({1 - len(nonzero) / len(values):.0%} zero)",
                )
            ax.set_yticks([])
            ax.text(0.01, 0.85, f"{name} {what}", transform=ax.transAxes, fontsize=8)
            if row == 0:
                ax.set_title(f"{what}s: histogram of log10 |value|", fontsize=9)
            ax.legend(fontsize=6, loc="upper right") if row == 0 else None
    for ax in axes[-1]:
        ax.set_xlabel("log10 |value|")
    fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()


def plot_sliding_windows(size=11, kernel=3, stride=2, padding=0):
    """Four panels: a ``size`` x ``size`` input (plus its zero padding, grey) and, in colour, the
    ``kernel`` x ``kernel`` window of the first few output positions along the top row and down the first
    column, with the output grid it produces."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    full = size + 2 * padding
    out = (full - kernel) // stride + 1
    positions = [(0, 0), (0, 1), (0, 2), (1, 0)]
    fig, axes = plt.subplots(1, len(positions) + 1, figsize=(2.3 * (len(positions) + 1), 2.5))
    for ax, (row, col) in zip(axes, positions):
        grid = np.zeros((full, full))
        grid[padding : padding + size, padding : padding + size] = 1
        ax.imshow(grid, cmap="Greys", vmin=-1, vmax=3)
        y, x = row * stride, col * stride
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), kernel, kernel, fill=True, alpha=0.45, color="C1"))
        ax.set_title(f"output ({row}, {col}): rows {y}-{y + kernel - 1}", fontsize=8)
    axes[-1].imshow(np.zeros((out, out)), cmap="Greys", vmin=-1, vmax=3)
    for row, col in positions:
        axes[-1].add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, color="C1", alpha=0.45))
    axes[-1].set_title(f"the {out} x {out} output", fontsize=8)
    for ax in axes:
        ax.set_xticks(np.arange(-0.5, ax.get_xlim()[1], 1), minor=True)
        ax.set_yticks(np.arange(-0.5, ax.get_ylim()[0], 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.5)
        ax.tick_params(which="both", length=0)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
    fig.suptitle(f"a {kernel} x {kernel} window, stride {stride}, on a {size} x {size} input", fontsize=9)
    plt.tight_layout()
    plt.show()


def plot_receptive_fields(fields, image_size=227, image=None):
    """The receptive field of one central unit of each layer, ``fields`` = [(layer name, size in pixels)],
    drawn as nested squares on a ``image_size`` x ``image_size`` input (on ``image`` when given)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    if image is not None:
        ax.imshow(image)
    ax.set_xlim(-0.5, image_size - 0.5)
    ax.set_ylim(image_size - 0.5, -0.5)
    centre = image_size / 2
    for k, (name, size) in enumerate(fields):
        colour = plt.cm.viridis(k / max(len(fields) - 1, 1))
        ax.add_patch(
            Rectangle((centre - size / 2, centre - size / 2), size, size, fill=False, color=colour, lw=1.5)
        )
        ax.text(
            centre + size / 2 - 2,
            centre - size / 2 + 2,
            f"{name} {size}",
            color=colour,
            fontsize=7,
            ha="right",
            va="top",
        )
    ax.set_title(f"receptive fields of one central unit, on a {image_size} x {image_size} input", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    plt.show()


def plot_activation_race(sweep, best, epochs, target):
    """Notebook 04's figure: training error per epoch of every run of the sweep (faint) and of each network's
    fastest run (bold), and the training loss of the fastest runs. ``sweep`` maps (name, lr) to
    (net, errors, losses); ``best`` maps name to its fastest learning rate."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(1, epochs + 1)
    colours = {"ReLU": "C0", "tanh": "C1"}
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.4))
    for (name, lr), (_, err, _) in sweep.items():
        if lr != best[name]:
            ax0.plot(x, 100 * err, color=colours[name], lw=0.8, alpha=0.3)
    for name, style in [("ReLU", "-"), ("tanh", "--")]:
        _, err, loss = sweep[name, best[name]]
        label = f"{name}, lr {best[name]}"
        ax0.plot(x, 100 * err, style, color=colours[name], marker="o", ms=3, label=label)
        ax1.plot(x, loss, style, color=colours[name], marker="o", ms=3, label=label)
    ax0.axhline(90, color="grey", ls=":", lw=1)
    ax0.text(epochs, 89, "chance", color="grey", fontsize=8, ha="right", va="top")
    ax0.axhline(100 * target, color="k", ls=":", lw=1)
    ax0.text(1, 100 * target - 1, "target", fontsize=8, va="top")
    ax0.set_xlabel("epoch")
    ax0.set_ylabel("training error (%)")
    ax0.set_title("training error (faint: the other learning rates)", fontsize=10)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy")
    ax1.set_title("training loss, fastest runs", fontsize=10)
    ax0.legend(loc="upper right")
    ax1.legend()
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    plt.tight_layout()
    plt.show()


def plot_momentum_after_drop(path, A, drop_at):
    """Notebook 08's figure: two optimisers' iterates on f(w) = w^T A w / 2 (``path`` maps a name to an array of
    iterates), on the contours of f, zoomed in after the learning-rate drop at step ``drop_at``, their step
    lengths and f along the way."""
    import matplotlib.pyplot as plt
    import numpy as np

    steps = len(next(iter(path.values()))) - 1
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    (ax_path, ax_zoom), (ax_step, ax_f) = axes
    g1, g2 = np.meshgrid(np.linspace(-4.5, 2.3, 300), np.linspace(-1.6, 1.8, 300))
    f_grid = 0.5 * (A[0, 0] * g1**2 + A[1, 1] * g2**2)
    after = np.concatenate([points[drop_at:] for points in path.values()])
    low, high = after.min(axis=0), after.max(axis=0)
    margin = 0.1 * (high - low)
    for ax, levels in [(ax_path, np.geomspace(0.01, 30, 14)), (ax_zoom, np.geomspace(1e-5, 3, 16))]:
        ax.contour(g1, g2, f_grid, levels=levels, colors="gray", linewidths=0.6)
    for (name, points), style in zip(path.items(), ["o-", "x--"]):
        ax_path.plot(points[:, 0], points[:, 1], style, ms=3, lw=1, label=name)
        ax_zoom.plot(points[drop_at:, 0], points[drop_at:, 1], style, ms=3, lw=1, label=name)
        steps_taken = np.linalg.norm(np.diff(points, axis=0), axis=1)
        ax_step.semilogy(np.arange(1, steps + 1), steps_taken, style, ms=3, lw=1, label=name)
        ax_f.semilogy(
            np.arange(steps + 1),
            0.5 * np.einsum("ni,ij,nj->n", points, A, points),
            style,
            ms=3,
            lw=1,
            label=name,
        )
    first = next(iter(path.values()))
    for ax in [ax_path, ax_zoom]:
        ax.plot(*first[drop_at], "k*", ms=12, label="learning rate / 10")
        ax.set(xlabel="$w_1$", ylabel="$w_2$")
    ax_path.set(title="trajectories on the contours of f")
    ax_zoom.set(
        title="zoom: after the drop",
        xlim=(low[0] - margin[0], high[0] + margin[0]),
        ylim=(low[1] - margin[1], high[1] + margin[1]),
    )
    ax_step.set(title=r"step length $\|w_{i+1} - w_i\|$ (= |velocity|)", xlabel="iteration")
    ax_f.set(title="f(w)", xlabel="iteration")
    for ax in [ax_step, ax_f]:
        ax.axvline(drop_at, color="k", lw=0.8, ls=":")
    ax_path.legend(fontsize=9, loc="lower right")
    ax_step.legend(fontsize=9)
    plt.tight_layout()
    plt.show()


def plot_shift_grid(image, rows, title):
    """Notebook 09's figure: ``image`` (H, W, 3, 0..255) plus RGB shifts, one row per entry of ``rows`` =
    [(row label, [panel titles], shifts of shape (panels, 3))]."""
    import matplotlib.pyplot as plt
    import numpy as np

    columns = max(len(titles) for _, titles, _ in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(2 * columns, 2.12 * len(rows)))
    for r, (name, titles, shifts) in enumerate(rows):
        for c, (panel, d) in enumerate(zip(titles, shifts)):
            axes[r, c].imshow(np.clip(image + d, 0, 255).astype(np.uint8))
            axes[r, c].set_title(f"{panel}\nshift=({d[0]:+.0f},{d[1]:+.0f},{d[2]:+.0f})", fontsize=7)
            axes[r, c].axis("off")
        axes[r, 0].text(
            -0.08, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right"
        )
    plt.suptitle(title)
    plt.tight_layout()
    plt.show()


def plot_top5(images, labels, probs, class_names, picks, top_k):
    """Figure 4 (left) in small: for each index in ``picks``, the image with its true class as title and a bar
    chart of its five most probable classes (``top_k(probs, class_names, 5)``), the true class in red."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 4, figsize=(10, 7.2), gridspec_kw={"height_ratios": [3, 2, 3, 2]})
    for k, i in enumerate(picks[:8]):
        ax_img, ax_bar = axes[2 * (k // 4), k % 4], axes[2 * (k // 4) + 1, k % 4]
        truth = class_names[labels[i]]
        top = top_k(probs[i], class_names, 5)
        ax_img.imshow(images[i])
        ax_img.axis("off")
        ax_img.set_title(truth, fontsize=8)
        names, ps = [n for n, _ in top][::-1], [p for _, p in top][::-1]
        ax_bar.barh(range(len(names)), ps, color=["tab:red" if n == truth else "tab:blue" for n in names])
        ax_bar.set_yticks(range(len(names)))
        ax_bar.set_yticklabels([n[:16] for n in names], fontsize=7)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(axis="x", labelsize=7)
    plt.suptitle("top-5 predictions, correct class in red (cf. Figure 4, left)")
    plt.tight_layout()
    plt.show()


def plot_dropout_masks(masks, p):
    """Notebook 07's figure: a corner of one mask, the values each mode's mask takes, and the fraction of units
    kept per example against the binomial's normal approximation. ``masks`` maps a mode to dropout applied to
    an all-ones (batch, units) array."""
    import matplotlib.pyplot as plt
    import numpy as np

    paper = masks["paper"]
    units = paper.shape[1]
    kept_fraction = (paper > 0).mean(axis=1)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].imshow(paper[:32, :64], cmap="gray", interpolation="nearest")
    axes[0].set(title="mask, 32 examples x 64 units", xlabel="unit", ylabel="example")
    axes[0].grid(False)
    for offset, (mode, mask) in zip([-0.1, 0.1], masks.items()):
        values, counts = np.unique(mask, return_counts=True)
        axes[1].bar(values + offset, counts / mask.size, width=0.2, label=f"{mode}: values {values.tolist()}")
    axes[1].set(
        title="values taken by the mask", xlabel="mask value", ylabel="fraction of entries", xticks=[0, 1, 2]
    )
    axes[1].legend(fontsize=9)
    axes[2].hist(kept_fraction, bins=20, density=True, alpha=0.7, label=f"{len(paper)} examples")
    grid = np.linspace(0.47, 0.53, 200)
    std = np.sqrt(p * (1 - p) / units)
    axes[2].plot(
        grid,
        np.exp(-0.5 * ((grid - (1 - p)) / std) ** 2) / (std * np.sqrt(2 * np.pi)),
        "k",
        label="binomial (normal approx.)",
    )
    axes[2].set(title="fraction of units kept per example", xlabel="fraction kept")
    axes[2].legend(fontsize=9)
    plt.tight_layout()
    plt.show()


def plot_pooling_overlap(windows_per_pixel, one_map):
    """Notebook 06's figure: for z=3, s=2 and z=2, s=2, how many windows cover each pixel of an 11 x 11 map
    (``windows_per_pixel(size, z, s)``), and how much gradient each input of ``one_map`` receives when every
    window sends dL/dy = 1."""
    import matplotlib.pyplot as plt
    import numpy as np

    import nn

    fig, axes = plt.subplots(2, 2, figsize=(8, 7.5))
    for col, (z, s) in enumerate([(3, 2), (2, 2)]):
        cover = axes[0, col].imshow(windows_per_pixel(11, z, s), cmap="viridis", vmin=0, vmax=4)
        axes[0, col].set_title(f"z={z}, s={s}: windows per pixel", fontsize=10)
        pool = nn.MaxPool2d(z, s)
        received = pool.backward(np.ones_like(pool(one_map)))[0, 0]
        grad = axes[1, col].imshow(received, cmap="magma", vmin=0, vmax=4)
        axes[1, col].set_title(f"z={z}, s={s}: gradient received", fontsize=10)
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(cover, ax=axes[0, :], shrink=0.8)
    fig.colorbar(grad, ax=axes[1, :], shrink=0.8)
    plt.show()
