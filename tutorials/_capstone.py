"""The capstone's plumbing (notebook 13): the learner's own exercise cells of notebooks 02-08, loaded into one
namespace and wrapped as layers.

``from_notebooks()`` reads the saved notebooks ``tutorials/NN_*.ipynb`` and executes, for each piece in
:data:`PIECES`, the code cell that starts with ``# EXERCISE: <name>``: the stub the learner filled in (as
published, the stubs themselves, which raise NotImplementedError when called). ``from_solutions()`` executes the
published solutions (``tutorials/solutions/NN_*.py``) instead; the capstone's own solution uses it, so the tests'
"with solutions" run trains on the published layers, and the "as published" run on the stubs ("not done yet").

Each cell runs in a namespace holding only ``np`` and ``nn``, the two names the exercises are written with. A
learner's function becomes a layer through a thin wrapper here (a Conv2d that holds the weights and calls
``conv2d_im2col``, a ReLU that calls ``relu_backward``...), never through ``nn``'s own layer; ``print(layers)``
prints where each piece came from.
"""

import json
from pathlib import Path

import numpy as np
from execute import MARKER, solution_blocks

import nn

TUTORIALS = Path(__file__).resolve().parent

# piece -> (notebook, exercise name, the name its cell defines).
# The exercise names are those of the notebooks' `# EXERCISE:` lines; rename here if a notebook renames one.
PIECES = {
    "Linear": ("02", "linear", "MyLinear"),
    "conv forward": ("03", "conv-im2col", "conv2d_im2col"),
    "conv backward": ("03", "conv-backward", "conv2d_im2col_backward"),
    "ReLU backward": ("04", "activation-backward", "relu_backward"),
    "LRN forward": ("05", "lrn-loop", "lrn_loop"),
    "LRN backward": ("05", "lrn-backward", "lrn_backward"),
    "pooling (average, forward and backward)": ("06", "avg-pool", "AvgPool2d"),
    "Dropout": ("07", "dropout", "MyDropout"),
    "softmax cross-entropy": ("08", "softmax-xent", "softmax_cross_entropy"),
    "update rule": ("08", "sgd-update", "PaperSGD"),
}
# The signatures the wrappers call:
#   conv2d_im2col(x, weight, bias, stride, padding) -> out
#   conv2d_im2col_backward(x, weight, stride, padding, grad_out) -> (grad_x, grad_weight, grad_bias)
#   relu_backward(x, grad_out) -> grad_x
#   lrn_loop(a, n, k, alpha, beta) -> b ;  lrn_backward(a, grad_out, n, k, alpha, beta) -> grad_a
#   softmax_cross_entropy(logits, labels) -> (loss, grad) ;  PaperSGD(params, lr, momentum, weight_decay).step()


def _notebook_cells(notebook):
    """``{exercise name: source}`` of the saved notebook ``tutorials/<notebook>_*.ipynb``."""
    (path,) = TUTORIALS.glob(f"{notebook}_*.ipynb")
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return {m.group(1): source for source in sources for m in [MARKER.match(source)] if m}


def _solution_cells(notebook):
    (path,) = TUTORIALS.glob(f"{notebook}_*.ipynb")
    return solution_blocks(path)


def from_notebooks():
    """Your layers: the exercise cells of notebooks 02-08 as you last saved them."""
    return Layers(_notebook_cells, "your saved notebooks")


def from_solutions():
    """The published solutions' layers (what the tests' "with solutions" run uses)."""
    return Layers(_solution_cells, "tutorials/solutions/")


class Layers:
    """The pieces of :data:`PIECES`, loaded from ``cells_of(notebook) -> {exercise: source}``, as layers."""

    def __init__(self, cells_of, origin):
        self.origin, self.status, self._found = origin, {}, {}
        cache = {}
        for piece, (notebook, exercise, name) in PIECES.items():
            cells = cache.setdefault(notebook, cells_of(notebook))
            if exercise not in cells:
                self.status[piece] = f"no exercise {exercise!r} in notebook {notebook}"
                continue
            namespace = {"np": np, "nn": nn, "__name__": f"notebook_{notebook}"}
            source = "\n".join(
                line for line in cells[exercise].splitlines() if not line.lstrip().startswith(("%", "!"))
            )
            try:
                exec(compile(source, f"<notebook {notebook}, exercise {exercise}>", "exec"), namespace)
            except Exception as exc:  # a cell that does not even define its function: say so, go on
                self.status[piece] = f"notebook {notebook}, exercise {exercise}: {type(exc).__name__}: {exc}"
                continue
            if name not in namespace:
                self.status[piece] = f"notebook {notebook}, exercise {exercise}: defines no {name}"
                continue
            self._found[piece] = namespace[name]
            self.status[piece] = f"{name} from notebook {notebook} ({exercise})"
        self.calls = {"loss": 0, "steps": 0}
        self._build_classes()

    def __repr__(self):
        lines = [f"layers loaded from {self.origin}:"]
        lines += [f"  {piece:<40} {status}" for piece, status in self.status.items()]
        return "\n".join(lines)

    def _piece(self, piece):
        if piece not in self._found:
            raise NotImplementedError(f"the capstone needs {piece}: {self.status[piece]}")
        return self._found[piece]

    # -- what the learner assembles ------------------------------------------------------------------------
    def _build_classes(self):
        layers = self
        self.Linear = self._found.get("Linear")
        self.AvgPool2d = self._found.get("pooling (average, forward and backward)")
        self.Dropout = self._found.get("Dropout")
        self.Flatten = nn.Flatten  # a reshape, not an exercise

        class Conv2d(nn.Module):
            """Holds the weights; forward is your conv2d_im2col, backward your conv2d_im2col_backward."""

            def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None):
                rng = rng if rng is not None else np.random.default_rng()
                fan_in = in_channels * kernel_size * kernel_size
                shape = (out_channels, in_channels, kernel_size, kernel_size)
                self.weight = nn.Parameter(rng.normal(0, np.sqrt(2 / fan_in), size=shape))  # He
                self.bias = nn.Parameter(np.zeros(out_channels))
                self.stride, self.padding = stride, padding

            def forward(self, x):
                self._input = x
                conv = layers._piece("conv forward")
                return conv(x, self.weight.data, self.bias.data, self.stride, self.padding)

            def backward(self, grad_out):
                backward = layers._piece("conv backward")
                grad_x, grad_w, grad_b = backward(
                    self._input, self.weight.data, self.stride, self.padding, grad_out
                )
                self.weight.grad += grad_w
                self.bias.grad += grad_b
                return grad_x

        class ReLU(nn.Module):
            """max(x, 0) forward (notebook 04's one line); backward your relu_backward."""

            def forward(self, x):
                self._input = x
                return np.maximum(x, 0)

            def backward(self, grad_out):
                return layers._piece("ReLU backward")(self._input, grad_out)

        class LocalResponseNorm(nn.Module):
            """Forward your lrn_loop; backward your lrn_backward."""

            def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0):
                self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

            def forward(self, a):
                self._input = a
                return layers._piece("LRN forward")(a, self.size, self.k, self.alpha, self.beta)

            def backward(self, grad_out):
                backward = layers._piece("LRN backward")
                return backward(self._input, grad_out, self.size, self.k, self.alpha, self.beta)

        self.Conv2d, self.ReLU, self.LocalResponseNorm = Conv2d, ReLU, LocalResponseNorm
        if "update rule" in self._found:

            class SGD(self._found["update rule"]):
                """Your PaperSGD, counting its steps (the grader checks that training used it)."""

                def step(self):
                    layers.calls["steps"] += 1
                    return super().step()

            self.SGD = SGD
        else:
            self.SGD = None

    def softmax_cross_entropy(self, logits, labels):
        """Your softmax_cross_entropy, counting its calls (the grader checks that training used it)."""
        self.calls["loss"] += 1
        return self._piece("softmax cross-entropy")(logits, labels)

    def own_classes(self):
        """The layer classes a capstone network may be made of."""
        return tuple(
            cls
            for cls in (
                self.Linear,
                self.AvgPool2d,
                self.Dropout,
                self.Conv2d,
                self.ReLU,
                self.LocalResponseNorm,
            )
            if isinstance(cls, type)
        )


def twenty_images(size=32, classes=5, per_class=4):
    """``(images (20, 3, size, size) float64, labels, class names, where they came from)``: the first
    ``per_class`` training photographs of the first ``classes`` classes of the Imagenette folder the notebooks
    use, centred per channel and scaled to unit variance; synthetic images (a coloured blob per class, at
    random places) when there are no photographs."""
    from _helpers import find_dataset

    tree = find_dataset(("imagenette-224", "imagenette2*"))
    if tree is not None:
        import data
        from data.layouts import read_class_names

        folders = sorted(p for p in (tree / "train").iterdir() if p.is_dir())[:classes]
        paths = [
            (k, path)
            for k, folder in enumerate(folders)
            for path in sorted(folder.glob("*.JPEG"))[:per_class]
        ]
        if len(paths) == classes * per_class:
            images = np.stack([data.load_image_square(path, size) for _, path in paths]).astype(np.float64)
            images = images.transpose(0, 3, 1, 2)
            images = (images - images.mean(axis=(0, 2, 3), keepdims=True)) / images.std(
                axis=(0, 2, 3), keepdims=True
            )
            labels = np.array([k for k, _ in paths])
            names = read_class_names(tree, tree.parent)
            return images, labels, [names.get(f.name, f.name) for f in folders], f"photographs from {tree}"
    rng = np.random.default_rng(0)
    images = rng.normal(0, 0.5, size=(classes * per_class, 3, size, size))
    labels = np.repeat(np.arange(classes), per_class)
    yy, xx = np.mgrid[:size, :size]
    for image, label in zip(images, labels):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 8) ** 2))
        image += blob * np.eye(3)[label % 3][:, None, None] * (1 + label // 3)
    names = [f"synthetic {k}" for k in range(classes)]
    return images, labels, names, "synthetic images (no photographs found: see tutorials/README.md)"
