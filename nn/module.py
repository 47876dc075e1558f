"""Parameters, modules and containers: the bookkeeping every layer shares.

The convention (the same names as PyTorch, so readers' habits carry over):

* ``forward(x)`` computes the output and caches what ``backward`` will need;
* ``backward(grad_out)`` receives dL/d(output), ADDS dL/d(parameter) into each
  ``Parameter.grad`` and returns dL/d(input);
* ``zero_grad()`` resets the accumulated gradients.

Sub-modules and parameters are found by looking at the object's attributes (in
the order they were assigned), so a layer needs no registration code.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from .backend import Array, asnumpy, device_of, get_array_module, to_device


class Parameter:
    """A learnable array ``data`` and the gradient ``grad`` accumulated for it."""

    def __init__(self, data: Array) -> None:
        self.data = data
        self.grad = get_array_module(data).zeros_like(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, device={device_of(self.data)})"


class Module:
    """Base class of every layer and network."""

    training = True

    # -- the two passes ----------------------------------------------------
    def forward(self, x: Array) -> Array:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out: Array) -> Array | None:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs: Array) -> Array:
        return self.forward(*inputs)

    # -- the tree of modules and parameters --------------------------------
    def _own_items(self, kind):
        return [(name, value) for name, value in vars(self).items() if isinstance(value, kind)]

    def named_children(self) -> list[tuple[str, Module]]:
        return self._own_items(Module)

    def children(self) -> list[Module]:
        return [module for _, module in self.named_children()]

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, with dotted names ("" for self)."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> list[Module]:
        return [module for _, module in self.named_modules()]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, param in self._own_items(Parameter):
            yield (f"{prefix}.{name}" if prefix else name), param
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self) -> list[Parameter]:
        return [param for _, param in self.named_parameters()]

    def num_parameters(self) -> int:
        return int(sum(param.size for param in self.parameters()))

    # -- modes, gradients, devices, dtypes --------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad[...] = 0

    def to(self, device: str) -> Module:
        """Move every parameter (and its gradient) to "cpu" or "cuda"."""
        for param in self.parameters():
            param.data = to_device(param.data, device)
            param.grad = to_device(param.grad, device)
        return self

    def astype(self, dtype) -> Module:
        """Cast every parameter to ``dtype`` (float64 for gradient checks)."""
        for param in self.parameters():
            param.data = param.data.astype(dtype)
            param.grad = param.grad.astype(dtype)
        return self

    @property
    def device(self) -> str:
        params = self.parameters()
        return device_of(params[0].data) if params else "cpu"

    @property
    def dtype(self):
        params = self.parameters()
        return params[0].data.dtype if params else None

    # -- saving and loading ------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameter name -> NumPy array (a copy, on the CPU)."""
        return OrderedDict((name, np.array(asnumpy(p.data))) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict[str, np.ndarray]) -> Module:
        """Copy arrays into the parameters' arrays (in place); every name and shape must match."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing {missing}, unexpected {unexpected}"
            )
        for name, param in params.items():
            value = state[name]
            if tuple(value.shape) != tuple(param.data.shape):
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {name} has shape {tuple(value.shape)}, "
                    f"expected {tuple(param.data.shape)}"
                )
            # Into the parameter's own array, not a new one: it may be a view of a flat buffer
            # (nn/flat.py) that the optimizer updates.
            xp = get_array_module(param.data)
            param.data[...] = xp.asarray(value, dtype=param.data.dtype)
        return self

    # -- helpers for layers -------------------------------------------------
    def _cached(self, *values):
        """Return what forward cached, or say clearly that forward never ran."""
        if any(value is None for value in values):
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return values if len(values) > 1 else values[0]

    def _check_grad(self, grad_out, out_shape):
        if tuple(grad_out.shape) != tuple(out_shape):
            raise ValueError(
                f"{type(self).__name__}.backward: grad_out has shape {tuple(grad_out.shape)}, "
                f"expected the output shape {tuple(out_shape)}"
            )

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def check_integers(layer_name: str, minimum: int, **values) -> None:
    """Raise a ValueError naming the layer unless every value (an int, or a tuple of ints such as a
    kernel size pair) is an integer >= ``minimum``. Booleans are not integers here."""
    for name, value in values.items():
        items = value if isinstance(value, tuple) else (value,)
        if not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in items
        ):
            raise ValueError(
                f"{layer_name}: {name} must be {'an integer' if len(items) == 1 else 'integers'} "
                f">= {minimum}, got {value!r}"
            )


def check_input(
    layer: Module,
    x: Array,
    ndim: int,
    channels: int | None = None,
    channel_axis: int = 1,
    what: str = "channels",
) -> None:
    """Raise a ValueError naming ``layer`` unless ``x`` has the expected shape and dtype."""
    name = type(layer).__name__
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ValueError(f"{name} expects an array, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{name} expects a {ndim}-D input, got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise ValueError(f"{name} expects a floating-point input (float32 or float64), got {x.dtype}")
    if channels is not None and x.shape[channel_axis] != channels:
        raise ValueError(
            f"{name} expects {channels} {what} on axis {channel_axis}, got input of shape {tuple(x.shape)}"
        )
    params = layer.parameters()
    if params and params[0].data.dtype != x.dtype:
        raise ValueError(
            f"{name} has {params[0].data.dtype} parameters but got a {x.dtype} input; "
            f"cast one of them (module.astype(...) or x.astype(...))"
        )


class Sequential(Module):
    """Apply modules in order; backward applies their backward passes in reverse."""

    def __init__(self, *modules: Module) -> None:
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential takes Modules, got {type(module).__name__} at position {index}")
            setattr(self, str(index), module)

    def __len__(self) -> int:
        return len(self.children())

    def __iter__(self) -> Iterator[Module]:
        return iter(self.children())

    def __getitem__(self, index: int) -> Module:
        return self.children()[index]

    def forward(self, x: Array) -> Array:
        for module in self.children():
            x = module.forward(x)
        return x

    def backward(self, grad_out: Array) -> Array | None:
        for module in reversed(self.children()):
            grad_out = module.backward(grad_out)
        return grad_out
