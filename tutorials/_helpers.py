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
    except ImportError:        # the repository root is not on the path: only the two folders above
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
def grade(name, check, tolerance=1e-6):
    """Grades one exercise and prints ONE verdict line, ``exercise <name>: PASS|FAIL|not done yet ...``.

    ``check`` is a function of no arguments that calls the student's code and returns the error to judge
    (a relative error, a maximum absolute difference, ...): the exercise passes when it is below
    ``tolerance``. A stub that still raises NotImplementedError is "not done yet", and any other exception
    a FAIL with its message: the notebook goes on either way. Returns True, False, or None (not done)."""
    try:
        error = check()
    except NotImplementedError:
        print(f"exercise {name}: not done yet (the stub above raises NotImplementedError: "
              f"write it, then rerun that cell and this one)")
        return None
    except Exception as exc:                      # a student's bug: report it, do not stop the notebook
        print(f"exercise {name}: FAIL ({type(exc).__name__}: {exc})")
        return False
    error = float(error)
    passed = error < tolerance                    # NaN compares False: a NaN fails
    print(f"exercise {name}: {'PASS' if passed else 'FAIL'} (error {error:.2e}, "
          f"{'below' if passed else 'not below'} the tolerance {tolerance:.0e})")
    return passed


def relative_error(a, b):
    """||a - b|| / max(||a||, ||b||): 0 when equal, about 1 when unrelated."""
    import numpy as np
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} against the expected {b.shape}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-30))


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
                ax.plot(bins[:-1], counts / max(len(values), 1), style[2:], color=style[:2], lw=1.2,
                        label=f"{label} ({1 - len(nonzero) / len(values):.0%} zero)")
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
        grid[padding:padding + size, padding:padding + size] = 1
        ax.imshow(grid, cmap="Greys", vmin=-1, vmax=3)
        y, x = row * stride, col * stride
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), kernel, kernel, fill=True, alpha=0.45, color="C1"))
        ax.set_title(f"output ({row}, {col}): rows {y}-{y + kernel - 1}", fontsize=8)
    axes[-1].imshow(np.zeros((out, out)), cmap="Greys", vmin=-1, vmax=3)
    for (row, col) in positions:
        axes[-1].add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, color="C1", alpha=0.45))
    axes[-1].set_title(f"the {out} x {out} output", fontsize=8)
    for ax in axes:
        ax.set_xticks(np.arange(-0.5, ax.get_xlim()[1], 1), minor=True)
        ax.set_yticks(np.arange(-0.5, ax.get_ylim()[0], 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.5); ax.tick_params(which="both", length=0)
        ax.set_xticklabels([]); ax.set_yticklabels([])
    fig.suptitle(f"a {kernel} x {kernel} window, stride {stride}, on a {size} x {size} input", fontsize=9)
    plt.tight_layout(); plt.show()


def plot_receptive_fields(fields, image_size=227, image=None):
    """The receptive field of one central unit of each layer, ``fields`` = [(layer name, size in pixels)],
    drawn as nested squares on a ``image_size`` x ``image_size`` input (on ``image`` when given)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    if image is not None:
        ax.imshow(image)
    ax.set_xlim(-0.5, image_size - 0.5); ax.set_ylim(image_size - 0.5, -0.5)
    centre = image_size / 2
    for k, (name, size) in enumerate(fields):
        colour = plt.cm.viridis(k / max(len(fields) - 1, 1))
        ax.add_patch(Rectangle((centre - size / 2, centre - size / 2), size, size, fill=False, color=colour, lw=1.5))
        ax.text(centre + size / 2 - 2, centre - size / 2 + 2, f"{name} {size}", color=colour, fontsize=7,
                ha="right", va="top")
    ax.set_title(f"receptive fields of one central unit, on a {image_size} x {image_size} input", fontsize=9)
    ax.set_xticks([]); ax.set_yticks([])
    plt.show()
