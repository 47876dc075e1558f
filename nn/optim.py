"""Stochastic gradient descent with momentum and weight decay, exactly §5.

"We trained our models using stochastic gradient descent with a batch size of
128 examples, momentum of 0.9, and weight decay of 0.0005. ... The update rule
for weight w was

    v_{i+1} := 0.9 * v_i - 0.0005 * eps * w_i - eps * <dL/dw |_{w_i}>_{D_i}
    w_{i+1} := w_i + v_{i+1}"

with eps the learning rate and <.>_{D_i} the gradient averaged over batch D_i
(our loss is already the batch mean, so ``param.grad`` is that average).

How this differs from ``torch.optim.SGD``: PyTorch keeps v' = m v' + (g + wd w)
and steps w -= eps v', i.e. its velocity is in gradient units and the CURRENT
learning rate multiplies all of it. Here eps is folded into v when each step is
taken, so when the learning rate is divided by 10 the momentum already built up
keeps its old size and decays away over ~1/(1 - m) steps, while PyTorch's
shrinks by 10 at once. With a constant learning rate the two are identical
(v = -eps v').

Weight decay is applied to every parameter handed to the optimizer, biases
included, since the paper's rule names no exception; pass a separate optimizer
(or weight_decay=0) for parameters you want to exempt.

Where the numbers live (``nn/flat.py``): the optimizer lays every parameter it is given out in
one flat buffer, every gradient in another and its velocities in a third (``FlatParameters``;
each ``param.data`` / ``param.grad`` becomes a view of its slice), so one step is six whole-buffer
passes (on the CPU over slices that stay in cache, shared out between threads by ``nn.threads``;
on a GPU over two large slices: 12 kernel launches for AlexNet's 61 M parameters where a step
parameter by parameter made about 11 per parameter, 176 in all). ``sgd_step_reference`` below is the same rule one parameter at a time, as
written; the tests hold ``SGD.step`` to it bit for bit (every entry sees the same float operations
in the same order, only the loop around them differs).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .backend import Array, asnumpy, get_array_module, to_device
from .flat import FlatParameters
from .module import Parameter
from .threads import over_batch


def sgd_step_reference(params: Sequence[Parameter], velocities: Sequence[Array], lr: float,
                       momentum: float, weight_decay: float) -> None:
    """§5's rule as written, one parameter at a time, in place (what ``SGD.step`` is tested against)."""
    for param, velocity in zip(params, velocities):
        velocity[...] = momentum * velocity - lr * (weight_decay * param.data + param.grad)
        param.data += velocity


class SGD:
    """§5's SGD over ``params``, which it lays out in flat buffers (``self.flat``, nn/flat.py).

    ``velocities``: one array per parameter (views of the flat ``velocity`` buffer), in the order
    of ``params``; ``state_dict()`` saves them as ``velocity.<i>``."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: need lr > 0, momentum >= 0, weight_decay >= 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.flat = FlatParameters(self.params)
        self.velocity = get_array_module(self.flat.data).zeros_like(self.flat.data)
        self.velocities = self.flat.views(self.velocity)

    def relink(self) -> None:
        """Repair the views of parameters whose arrays were replaced (``FlatParameters.relink``);
        if the buffers moved to another device or dtype, the velocities move with them."""
        if self.flat.relink():
            xp = get_array_module(self.flat.data)
            self.velocity = xp.asarray(to_device(self.velocity, self.flat.device), dtype=self.flat.data.dtype)
            self.velocities = self.flat.views(self.velocity)

    def zero_grad(self) -> None:
        self.relink()
        self.flat.zero_grad()

    # On the CPU the update runs over slices of this many entries, so that its one temporary
    # (lr * (g + wd * w)) stays in cache instead of being a 244 MB array for AlexNet. On a GPU,
    # over slices of GPU_CHUNK: two for AlexNet's 61 M parameters, six kernel launches each, with a
    # 128 MB temporary.
    CHUNK = 1 << 18
    GPU_CHUNK = 1 << 25

    def step(self) -> None:
        """v <- m v - lr * (wd * w + dL/dw) ;  w <- w + v   (in place, on the flat buffers)."""
        self.relink()
        # slices of about 4 MB of the entries, shared out between the pool's threads (nn.threads)
        over_batch(self._update, self.flat.data, self.flat.grad, self.velocity)

    def _update(self, weight, grad, vel):
        """The update rule on (a slice of) the flat buffers, in place."""
        xp = get_array_module(weight)
        chunk = self.CHUNK if xp is np else self.GPU_CHUNK
        scratch = xp.empty(min(chunk, weight.size), dtype=weight.dtype)
        for start in range(0, weight.size, chunk):
            # named slices: ``v[part] *= m`` would also copy the result back (on CuPy, a 2nd kernel)
            w, g, v = weight[start:start + chunk], grad[start:start + chunk], vel[start:start + chunk]
            update = scratch[:len(w)]
            xp.multiply(w, self.weight_decay, out=update)              # wd * w
            update += g                                                 # + dL/dw
            update *= self.lr                                           # * eps
            v *= self.momentum                                          # v <- m v - update
            v -= update
            w += v                                                      # w <- w + v

    def state_dict(self) -> dict[str, np.ndarray]:
        self.relink()
        state = {"lr": np.float64(self.lr), "momentum": np.float64(self.momentum),
                 "weight_decay": np.float64(self.weight_decay)}
        for index, velocity in enumerate(self.velocities):
            state[f"velocity.{index}"] = np.array(asnumpy(velocity))
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> SGD:
        count = sum(1 for key in state if key.startswith("velocity."))
        if count != len(self.params):
            raise ValueError(f"SGD.load_state_dict: the state has {count} velocities, "
                             f"the optimizer has {len(self.params)} parameters")
        self.relink()
        for index, velocity in enumerate(self.velocities):
            saved = state[f"velocity.{index}"]
            if saved.shape != velocity.shape:
                raise ValueError(f"SGD.load_state_dict: velocity.{index} has shape {saved.shape}, "
                                 f"expected {velocity.shape}")
        self.lr = float(state["lr"])
        self.momentum = float(state["momentum"])
        self.weight_decay = float(state["weight_decay"])
        xp = get_array_module(self.velocity)
        for index, velocity in enumerate(self.velocities):   # into the flat buffer's views
            velocity[...] = xp.asarray(state[f"velocity.{index}"], dtype=velocity.dtype)
        return self
