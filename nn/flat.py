"""Every parameter in one flat buffer, every gradient in another: the layers' arrays are views.

§5's update (``nn.optim``) does the same arithmetic on every entry of every weight and bias.
Done parameter by parameter it is a dozen array operations for each of AlexNet's 16 parameters
(on a GPU, a kernel launch each); with all the parameters laid out one after another in ONE
contiguous array, and the gradients and the velocities the same way, it is a few passes over
three whole buffers. The same layout lets the data-parallel all-reduce (``alexnet.parallel``)
reduce the gradient buffer in place, with no packing, and makes ``zero_grad`` one fill::

    flat = FlatParameters(model.parameters())
    flat.data        # 1-D: every parameter's entries, in the order given
    flat.grad        # 1-D: every gradient's entries, the same layout
    param.data       # still an array of the parameter's own shape: a view of flat.data

The layers see nothing of this: ``param.data`` and ``param.grad`` keep their shapes, and every
in-place update of them (``param.grad += ...``) lands in the buffers. Building it moves each
parameter into the buffer and drops its old array, so the values are not held twice.

What can cut a view loose is code that ASSIGNS a new array to ``param.data`` or ``param.grad``
(``Module.to`` to another device, ``Module.astype``, a user's own code; ``Module.load_state_dict``
copies into the existing arrays and keeps the views). :meth:`FlatParameters.relink` notices it
(one identity check per parameter) and repairs it: an array of the same device and dtype is copied
into its view; when every parameter moved to one new device or dtype, the buffers are built again
there. ``nn.SGD`` relinks before every ``step`` and ``zero_grad``.

The other direction matters too: an array taken from ``param.data`` BEFORE the buffers were made
is the parameter's old array, no longer its storage (read ``param.data`` again after making the
optimizer). One buffer pair holds one dtype on one device: parameters of mixed dtypes or devices
are refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from .backend import Array, device_of, get_array_module
from .module import Parameter


class FlatParameters:
    """``data`` and ``grad``: one 1-D buffer each, with every parameter's ``.data`` / ``.grad`` a
    view of its slice (in the order given). ``spare`` extra entries may follow the gradients in
    ``grad_buffer`` (numbers that must travel with them through an all-reduce); ``grad`` excludes them."""

    def __init__(self, params: Iterable[Parameter], spare: int = 0) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("FlatParameters got an empty parameter list")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("FlatParameters: a parameter is listed twice")
        self.sizes = [p.data.size for p in self.params]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(self.sizes) + 1)]
        self.size = self.offsets[-1]
        self.spare_size = int(spare)
        self._build()

    def _kind(self):
        """(device, dtype) shared by every parameter's data and grad; ValueError otherwise."""
        kinds = {(device_of(a), a.dtype) for p in self.params for a in (p.data, p.grad)}
        if len(kinds) != 1:
            found = ", ".join(sorted(f"{dtype} on {device}" for device, dtype in kinds))
            raise ValueError(f"FlatParameters: one buffer holds one dtype on one device; got {found}")
        return kinds.pop()

    def _build(self) -> None:
        """New buffers on the parameters' device and dtype, each parameter copied in and re-viewed."""
        _, dtype = self._kind()
        xp = get_array_module(self.params[0].data)
        self.data = xp.empty(self.size, dtype=dtype)
        self.grad_buffer = xp.empty(self.size + self.spare_size, dtype=dtype)
        self.grad = self.grad_buffer[: self.size]
        self.spare = self.grad_buffer[self.size :]
        self.spare[...] = 0
        for param, view_of_data, view_of_grad in zip(
            self.params, self.views(self.data), self.views(self.grad)
        ):
            view_of_data[...] = param.data
            view_of_grad[...] = param.grad
            param.data, param.grad = view_of_data, view_of_grad
        self._linked = [(p.data, p.grad) for p in self.params]

    def views(self, buffer: Array) -> list[Array]:
        """``buffer`` (1-D, at least ``size`` entries, this layout) cut into one array per parameter,
        each of its parameter's shape: e.g. the optimizer's velocities."""
        return [
            buffer[start:stop].reshape(p.data.shape)
            for p, start, stop in zip(self.params, self.offsets[:-1], self.offsets[1:])
        ]

    @property
    def device(self) -> str:
        return device_of(self.data)

    def reserve_spare(self, count: int) -> Array:
        """At least ``count`` spare entries after the gradients (the gradient buffer is rebuilt, once,
        if it has fewer); returns ``spare``."""
        self.relink()
        if count > self.spare_size:
            self.spare_size = int(count)
            self._build()
        return self.spare

    def linked(self) -> bool:
        """Is every ``param.data`` / ``param.grad`` still its view of the buffers?"""
        return all(p.data is data and p.grad is grad for p, (data, grad) in zip(self.params, self._linked))

    def relink(self) -> bool:
        """Put back every view that code replaced by assigning ``param.data`` or ``param.grad``.

        An array of the buffers' device and dtype is copied into its view. When all of them moved
        to one other device or dtype (``Module.to``, ``Module.astype``), the buffers are built again
        there and True is returned: whoever keeps arrays in this layout (the optimizer's velocities)
        must move them too. ValueError when a parameter changed shape, or only some moved."""
        if self.linked():
            return False
        for param, size in zip(self.params, self.sizes):
            if param.data.size != size or param.grad.shape != param.data.shape:
                raise ValueError(
                    f"FlatParameters: a parameter changed shape to {tuple(param.data.shape)} "
                    f"(grad {tuple(param.grad.shape)}) after the buffers were made; make the "
                    f"optimizer again"
                )
        kind = self._kind()
        if kind != (self.device, self.data.dtype):
            self._build()
            return True
        for param, (data, grad) in zip(self.params, self._linked):
            if param.data is not data:
                data[...] = param.data
                param.data = data
            if param.grad is not grad:
                grad[...] = param.grad
                param.grad = grad
        return False

    def zero_grad(self) -> None:
        """Every gradient to zero: one fill of the buffer."""
        self.relink()
        self.grad.fill(0)
