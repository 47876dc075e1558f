"""Gradient checking: is a hand-written backward pass the derivative of its forward pass?

The check compares the analytic gradient (what ``backward`` returns) with
central differences of the forward pass:

    df/dx_i  ~  ( f(x + eps e_i) - f(x - eps e_i) ) / (2 eps)       error O(eps^2)

The scalar f is NOT the sum of the outputs (whose upstream gradient, all ones,
hides transposition and indexing bugs): it is f(x) = sum(g * module(x)) for a
fixed random upstream gradient g, or a real loss when one is given.

* float64 throughout: in float32 the rounding of f (~1e-7 relative) divided by
  2 eps swamps the comparison; in float64 the error is ~1e-10.
* Relative error ||analytic - numeric|| / max(||analytic||, ||numeric||) over all
  checked entries, for the input and for every parameter.
* Small tensors are checked entry by entry; large ones along random unit
  directions d, where the exact identity is  <grad, d> = d/dt f(x + t d).
* Layers that draw random numbers (dropout) have their generators reset before
  every forward pass so that all evaluations see the same mask.

Command line: ``python -m nn.gradcheck`` checks every layer on the available
backends and prints a table; ``--layer package.module:factory`` checks a layer of
your own (the factory returns a module, or a (module, input[, loss, labels]) tuple).
A package built on ``nn`` adds its own cases by calling ``main(extra_cases=...)``:
``python -m alexnet.gradcheck`` is this table plus a reduced AlexNet end to end.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .backend import asnumpy, cupy_available, get_array_module, to_device


@dataclass
class TensorCheck:
    name: str  # "input" or a parameter name
    checked: int  # entries or directions compared
    mode: str  # "elementwise" or "directions"
    error: float  # relative error


@dataclass
class GradcheckResult:
    tensors: list = field(default_factory=list)
    tolerance: float = 1e-6

    @property
    def max_error(self):
        return max((t.error for t in self.tensors), default=0.0)

    @property
    def passed(self):
        return self.max_error < self.tolerance

    def __str__(self):
        lines = [f"{'tensor':<24}{'mode':<13}{'checked':>8}  rel. error"]
        lines += [f"{t.name:<24}{t.mode:<13}{t.checked:>8}  {t.error:.2e}" for t in self.tensors]
        lines.append(f"max relative error {self.max_error:.2e} -> {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def relative_error(analytic, numeric):
    analytic, numeric = np.ravel(analytic), np.ravel(numeric)
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric), 1e-30)
    return float(np.linalg.norm(analytic - numeric) / scale)


def _generators(module):
    """Every numpy Generator held by the module tree (dropout masks)."""
    return [
        value
        for sub in module.modules()
        for value in vars(sub).values()
        if isinstance(value, np.random.Generator)
    ]


def check_module(
    module,
    x,
    *,
    loss=None,
    labels=None,
    eps=1e-6,
    max_elements=64,
    directions=8,
    seed=0,
    check_input=True,
    tolerance=1e-6,
):
    """Check ``module.backward`` against central differences; returns a GradcheckResult.

    module: an nn.Module; it is converted to float64 in place (pass a copy to keep yours).
    x: the input (cast to float64, kept on its device).
    loss, labels: if given, f = loss.forward(module(x), labels); otherwise
        f = sum(g * module(x)) with a fixed random g.
    max_elements: tensors with at most this many entries are checked entry by entry,
        larger ones along ``directions`` random unit directions.
    """
    xp = get_array_module(x)
    module.astype(np.float64)
    x = xp.asarray(x, dtype=np.float64).copy()
    rng = np.random.default_rng(seed)
    generator_states = [gen.bit_generator.state for gen in _generators(module)]

    def forward(inp):
        for gen, state in zip(_generators(module), generator_states):
            gen.bit_generator.state = copy.deepcopy(state)
        return module.forward(inp)

    out = forward(x)
    if loss is None:
        upstream = xp.asarray(rng.normal(size=out.shape))

        def objective(inp):
            return float((forward(inp) * upstream).sum())
    else:

        def objective(inp):
            return loss.forward(forward(inp), labels)

        loss.forward(out, labels)
        upstream = loss.backward()

    # analytic gradients
    module.zero_grad()
    forward(x)
    grad_x = module.backward(upstream)
    targets = []
    if check_input and grad_x is not None:  # a first layer may skip its input gradient
        targets.append(("input", x, asnumpy(grad_x)))
    targets += [(name, param.data, asnumpy(param.grad)) for name, param in module.named_parameters()]

    result = GradcheckResult(tolerance=tolerance)
    for name, array, analytic in targets:
        flat = array.reshape(-1)  # a view: perturbing it perturbs the tensor
        if array.size <= max_elements:
            numeric = np.empty(array.size)
            for i in range(array.size):
                original = float(flat[i])
                flat[i] = original + eps
                plus = objective(x)
                flat[i] = original - eps
                minus = objective(x)
                flat[i] = original
                numeric[i] = (plus - minus) / (2 * eps)
            result.tensors.append(
                TensorCheck(name, array.size, "elementwise", relative_error(analytic.ravel(), numeric))
            )
        else:
            analytic_proj, numeric_proj = [], []
            original = array.copy()
            for _ in range(directions):
                direction = rng.normal(size=array.shape)
                direction /= np.linalg.norm(direction)
                direction_dev = xp.asarray(direction)
                array[...] = original + eps * direction_dev
                plus = objective(x)
                array[...] = original - eps * direction_dev
                minus = objective(x)
                array[...] = original
                numeric_proj.append((plus - minus) / (2 * eps))
                analytic_proj.append(float((analytic * direction).sum()))
            result.tensors.append(
                TensorCheck(name, directions, "directions", relative_error(analytic_proj, numeric_proj))
            )
    return result


# ---------------------------------------------------------------------------
# The command line: every layer of the library, on every available backend.


def _standard_cases():
    """(name, factory) pairs; a factory(rng) returns (module, input[, loss, labels])."""
    from . import (
        Conv2d,
        Dropout,
        Flatten,
        Linear,
        LocalResponseNorm,
        MaxPool2d,
        ReLU,
        Sequential,
        SoftmaxCrossEntropyLoss,
        Tanh,
    )

    def distinct(rng, shape):
        """Values spaced >= 1e-3 apart: no ties in max-pooling, no kinks within eps of ReLU."""
        values = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64)
        return (values - values.mean()) / values.size * 4 + 1e-3 * rng.random(shape)

    def small_net(rng):
        net = Sequential(
            Conv2d(3, 4, 3, stride=2, padding=1, rng=rng),
            ReLU(),
            LocalResponseNorm(size=3, alpha=0.5, k=1.0),
            MaxPool2d(3, 2),
            Flatten(),
            Linear(4 * 3 * 3, 5, rng=rng),
        )
        return net, rng.normal(size=(3, 3, 13, 14)), SoftmaxCrossEntropyLoss(), rng.integers(0, 5, 3)

    return [
        ("Conv2d 3x3", lambda r: (Conv2d(3, 4, 3, rng=r), r.normal(size=(2, 3, 5, 6)))),
        (
            "Conv2d stride 2, pad 1",
            lambda r: (Conv2d(2, 3, 3, stride=2, padding=1, rng=r), r.normal(size=(2, 2, 7, 8))),
        ),
        (
            "Conv2d groups=2, 5x5, pad 2",
            lambda r: (Conv2d(4, 6, 5, padding=2, groups=2, rng=r), r.normal(size=(2, 4, 6, 5))),
        ),
        (
            "Conv2d 11x11 stride 4",
            lambda r: (Conv2d(3, 4, 11, stride=4, rng=r), r.normal(size=(1, 3, 19, 23))),
        ),
        ("ReLU", lambda r: (ReLU(), distinct(r, (2, 3, 4, 5)))),
        ("Tanh", lambda r: (Tanh(), r.normal(size=(2, 3, 4)))),
        ("MaxPool2d 3/2 (no ties)", lambda r: (MaxPool2d(3, 2), distinct(r, (2, 3, 9, 8)))),
        ("MaxPool2d 2/2", lambda r: (MaxPool2d(2, 2), distinct(r, (2, 2, 6, 6)))),
        ("LRN paper constants", lambda r: (LocalResponseNorm(), r.normal(size=(2, 8, 3, 3)))),
        (
            "LRN alpha=1, 4 channels",
            lambda r: (LocalResponseNorm(size=5, alpha=1.0, beta=0.75, k=2.0), r.normal(size=(2, 4, 3, 3))),
        ),
        (
            "LRN groups=2 (one window per tower)",
            lambda r: (
                LocalResponseNorm(size=5, alpha=1.0, beta=0.75, k=2.0, groups=2),
                r.normal(size=(2, 6, 2, 2)),
            ),
        ),
        (
            "LRN even size 4, alpha=1",
            lambda r: (LocalResponseNorm(size=4, alpha=1.0, beta=0.75, k=1.0), r.normal(size=(2, 6, 2, 2))),
        ),
        (
            "Dropout p=0.5 (train)",
            lambda r: (Dropout(0.5, rng=np.random.default_rng(1)), r.normal(size=(4, 10))),
        ),
        ("Dropout paper mode (eval)", lambda r: (Dropout(0.5, mode="paper").eval(), r.normal(size=(4, 10)))),
        ("Linear", lambda r: (Linear(7, 5, rng=r), r.normal(size=(3, 7)))),
        ("Flatten", lambda r: (Flatten(), r.normal(size=(2, 3, 2, 2)))),
        (
            "Softmax cross-entropy",
            lambda r: (
                Sequential(Linear(6, 4, rng=r)),
                r.normal(size=(5, 6)),
                SoftmaxCrossEntropyLoss(),
                r.integers(0, 4, 5),
            ),
        ),
        ("Small net (conv-relu-lrn-pool-fc-loss)", small_net),
    ]


def run_case(factory, device="cpu", seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    made = factory(rng)
    if not isinstance(made, tuple):
        raise TypeError("a gradcheck factory must return a module or a (module, input[, loss, labels]) tuple")
    module, x = made[0], made[1]
    loss, labels = (made[2], made[3]) if len(made) > 2 else (None, None)
    module.astype(np.float64)
    module.to(device)
    x = to_device(np.asarray(x, dtype=np.float64), device)
    if labels is not None:
        labels = to_device(np.asarray(labels), device)
    return check_module(module, x, loss=loss, labels=labels, seed=seed, **kwargs)


def _load_user_factory(spec, input_shape):
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--layer expects package.module:factory, got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attr)

    def wrapped(rng):
        made = factory()
        if isinstance(made, tuple):
            return made
        if input_shape is None:
            raise SystemExit("--layer returned a module without an input: also pass --input-shape N,C,H,W")
        return made, rng.normal(size=input_shape)

    return wrapped


def main(
    argv: list[str] | None = None,
    extra_cases: Sequence[tuple[str, Callable]] = (),
    prog: str = "python -m nn.gradcheck",
) -> int:
    """The command line. ``extra_cases``: (name, factory(rng)) pairs checked after the layers
    (``--no-alexnet`` skips them), e.g. a whole network from a package built on ``nn``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check every layer's backward pass against central differences (float64).",
        epilog="The reduced AlexNet end to end: python -m alexnet.gradcheck (these layers and the network), "
        "or --layer alexnet.gradcheck:reduced_alexnet (the network alone).",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda", "all"],
        default="all",
        help="backend(s) to check; 'all' = cpu, plus cuda when CuPy sees a GPU (default)",
    )
    parser.add_argument(
        "--layer",
        help="check your own layer: package.module:factory, where factory() returns "
        "a Module or a (module, input) tuple",
    )
    parser.add_argument("--input-shape", help="input shape for --layer, e.g. 2,3,8,8")
    parser.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest relative error that passes (1e-6)"
    )
    parser.add_argument("--eps", type=float, default=1e-6, help="finite-difference step (1e-6)")
    parser.add_argument(
        "--no-alexnet",
        action="store_true",
        help="skip the end-to-end cases after the layers (python -m alexnet.gradcheck: the reduced AlexNet)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if cupy_available() else [])
    else:
        devices = [args.device]
    if args.layer:
        shape = tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape else None
        cases = [(args.layer, _load_user_factory(args.layer, shape))]
    else:
        cases = _standard_cases() + ([] if args.no_alexnet else list(extra_cases))

    width = max(len(name) for name, _ in cases) + 2
    print(f"{'layer':<{width}}{'backend':<9}{'dtype':<9}{'max rel. error':>15}  result")
    failures = 0
    for device in devices:
        backend = "numpy" if device == "cpu" else "cupy"
        for name, factory in cases:
            result = run_case(factory, device=device, seed=args.seed, eps=args.eps, tolerance=args.tolerance)
            failures += not result.passed
            print(
                f"{name:<{width}}{backend:<9}{'float64':<9}{result.max_error:>15.2e}  "
                f"{'pass' if result.passed else 'FAIL'}",
                flush=True,
            )
            if args.layer or not result.passed:  # say which tensor is wrong
                print("    " + str(result).replace("\n", "\n    "))
    print(
        f"\n{len(cases) * len(devices) - failures} passed, {failures} failed "
        f"(tolerance {args.tolerance:g})"
        + ("" if "cuda" in devices else "; cuda: no GPU available, not checked")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
