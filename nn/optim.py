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
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .backend import asnumpy, get_array_module
from .module import Parameter
from .threads import over_batch


class SGD:
    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 5e-4) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        if lr <= 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: need lr > 0, momentum >= 0, weight_decay >= 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocities = [get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad[...] = 0

    # On the CPU the update runs over slices of this many entries, so that its one temporary
    # (lr * (g + wd * w)) stays in cache instead of being a 150 MB array for fc6.
    CHUNK = 1 << 18

    def step(self) -> None:
        """v <- m v - lr * (wd * w + dL/dw) ;  w <- w + v   (in place)."""
        for param, velocity in zip(self.params, self.velocities):
            xp = get_array_module(param.data)
            if velocity.shape != param.data.shape or get_array_module(velocity) is not xp:
                raise RuntimeError("SGD: a parameter changed shape or device after the optimizer was made; "
                                   "create the optimizer after model.to(device)")
            if not (param.data.flags.c_contiguous and param.grad.flags.c_contiguous):
                param.data, param.grad = xp.ascontiguousarray(param.data), xp.ascontiguousarray(param.grad)
            weight, grad, vel = param.data.reshape(-1), param.grad.reshape(-1), velocity.reshape(-1)
            # slices of about 4 MB of the entries, shared out between the pool's threads (nn.threads)
            over_batch(self._update, weight, grad, vel)

    def _update(self, weight, grad, vel):
        """The update rule on (a slice of) one parameter's entries, in place."""
        xp = get_array_module(weight)
        chunk = self.CHUNK if xp is np else weight.size
        scratch = xp.empty(min(chunk, weight.size), dtype=weight.dtype)
        for start in range(0, weight.size, chunk):
            part = slice(start, start + chunk)
            update = scratch[:len(weight[part])]
            xp.multiply(weight[part], self.weight_decay, out=update)   # wd * w
            update += grad[part]                                        # + dL/dw
            update *= self.lr                                           # * eps
            vel[part] *= self.momentum                                  # v <- m v - update
            vel[part] -= update
            weight[part] += vel[part]                                   # w <- w + v

    def state_dict(self) -> dict[str, np.ndarray]:
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
        self.lr = float(state["lr"])
        self.momentum = float(state["momentum"])
        self.weight_decay = float(state["weight_decay"])
        for index, param in enumerate(self.params):
            saved = state[f"velocity.{index}"]
            if saved.shape != param.data.shape:
                raise ValueError(f"SGD.load_state_dict: velocity.{index} has shape {saved.shape}, "
                                 f"expected {param.data.shape}")
            self.velocities[index] = get_array_module(param.data).asarray(saved, dtype=param.data.dtype).copy()
        return self
