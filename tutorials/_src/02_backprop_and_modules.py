# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Backpropagation and the Module contract
#
# The paper never writes down a backward pass: in 2012 "trained with stochastic gradient descent" (§5) meant
# that everyone knew how to get the gradient. This project writes every one of them by hand, and the notebooks
# after this one derive them layer by layer. This notebook is the glue they all rely on:
#
# 1. the **chain rule** over a stack of layers, and why each layer only needs one function, `backward`;
# 2. the **Module contract** of `nn`: what `forward` caches and why, `backward` running in reverse, gradients
#    **accumulating** into `.grad`, and `zero_grad`;
# 3. `Sequential`, the container that runs the stack;
# 4. `Linear` (fc6, fc7, fc8) **derived by hand**, $dW = g^\top x$, $db = \sum g$, $dx = g W$, on a 2×3
#    example worked with pencil and paper, then a **gradient check**; and `Flatten`, between pool5 and fc6;
# 5. the three "gates" of CS231n (max **routes**, add **distributes**, multiply **swaps**), seen on AlexNet's
#    own layers;
# 6. an exercise: write `Linear` yourself, and have it graded.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small matrices: threads cost more than they save
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
import numpy as np
import nn
from nn.gradcheck import check_module

rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The chain rule over a stack of layers
#
# AlexNet is a composition: $x_0$ is the image, layer $i$ computes $x_i = f_i(x_{i-1}; \theta_i)$, and the loss is
# $L = \ell(x_k)$. Write $g_i = \partial L / \partial x_i$ for the gradient of the loss with respect to layer $i$'s
# output (an array of the same shape as $x_i$). The chain rule, applied once per layer, is
#
# $$
# g_{i-1} = \Big(\frac{\partial x_i}{\partial x_{i-1}}\Big)^{\!\top} g_i ,
# \qquad
# \frac{\partial L}{\partial \theta_i} = \Big(\frac{\partial x_i}{\partial \theta_i}\Big)^{\!\top} g_i .
# $$
#
# Two consequences shape the whole library:
#
# * **Nobody builds the Jacobian.** $\partial x_i / \partial x_{i-1}$ of conv1 would be a
#   $(96\cdot55\cdot55) \times (3\cdot227\cdot227)$ matrix, 45 billion entries per image. A layer only has to
#   compute the *product* of the transposed Jacobian with a vector, $g_i \mapsto g_{i-1}$ (a
#   "vector-Jacobian product"), and it can do that cheaply from what its forward pass saw.
# * **The order is reversed.** $g_k$ comes first (from the loss), then $g_{k-1}$, ..., $g_0$: the backward pass
#   visits the layers from last to first. Each layer needs its own input (or output) from the forward pass, so
#   the forward pass must **cache** it: this is the memory that training costs on top of inference.

# %%
print(f"conv1's Jacobian: {96 * 55 * 55:,} x {3 * 227 * 227:,} = {96 * 55 * 55 * 3 * 227 * 227:.2e} entries per image")
assert 4.4e10 < 96 * 55 * 55 * 3 * 227 * 227 < 4.6e10          # "45 billion" in the text above

# %% [markdown]
# ## 2. The Module contract
#
# Every layer in `nn` is an `nn.Module` with two methods (`nn/module.py`):
#
# * `forward(x)` returns the output **and caches** what `backward` will need;
# * `backward(g)` receives $g = \partial L/\partial(\text{output})$, **adds** $\partial L/\partial\theta$ into each
#   parameter's `.grad`, and **returns** $\partial L/\partial(\text{input})$.
#
# Parameters are `nn.Parameter` objects: an array `.data` and a gradient `.grad` of the same shape. Here is what
# each of AlexNet's layer types keeps after a forward pass (the attributes starting with `_` that the pass set):

# %%
x4 = rng.normal(size=(2, 8, 6, 6))
layers = [nn.ReLU(), nn.MaxPool2d(3, 2), nn.LocalResponseNorm(), nn.Dropout(0.5, rng=np.random.default_rng(1)),
          nn.Flatten(), nn.Linear(4, 3, dtype=np.float64)]
caches = {}
for layer in layers:
    inp = rng.normal(size=(2, 4)) if isinstance(layer, nn.Linear) else x4
    before = dict(vars(layer))
    layer.forward(inp)
    cached = {k: (v.shape if hasattr(v, "shape") else v) for k, v in vars(layer).items()  # what forward stored
              if k.startswith("_") and v is not None and v is not before.get(k)}
    caches[type(layer).__name__] = sorted(cached)
    print(f"{type(layer).__name__:<18} caches {cached}")
assert caches["ReLU"] == ["_out"] and caches["MaxPool2d"] == ["_input", "_out"]  # the table
assert caches["LocalResponseNorm"] == ["_input", "_out", "_scale"]

# %% [markdown]
# Each cache is what that layer's derivative needs (sometimes a little more, to save work or memory):
#
# | layer | caches | because its backward computes |
# |---|---|---|
# | `ReLU` | its output $y$, positive exactly where the input was | $g \odot [y > 0] = g \odot [x > 0]$ |
# | `MaxPool2d` | its input and output: each window's winner is the input equal to the output | send $g$ to the winner |
# | `LocalResponseNorm` | its input, its output and the denominators' bases $s_i = k + \alpha S_i$ | the cross-channel term of §3.3 (notebook 05) |
# | `Dropout` | the mask | $g \odot \text{mask}$ |
# | `Flatten` | the input's shape | reshape $g$ back |
# | `Linear` | the input $x$ | $dW = g^\top x$ |
#
# Calling `backward` before `forward` is a bug, and the layers say so:

# %%
try:
    nn.Linear(4, 3).backward(np.ones((2, 3), np.float32))
except RuntimeError as error:
    print("RuntimeError:", error)

# %% [markdown]
# ### Gradients accumulate; `zero_grad` resets them
#
# `backward` **adds** into `.grad` instead of overwriting it. This is what the chain rule asks for when a parameter
# is used more than once (its gradient is the sum over its uses), and it lets a large batch be processed in
# pieces whose gradients add up. The price: before each optimizer step the gradients must be reset with
# `zero_grad()`, or the step uses the sum of every batch seen so far. Two backward passes give twice the gradient:

# %%
fc = nn.Linear(3, 2, dtype=np.float64, rng=np.random.default_rng(0))
x = rng.normal(size=(4, 3)); g = rng.normal(size=(4, 2))
fc.forward(x); fc.backward(g)
once = fc.weight.grad.copy()
fc.forward(x); fc.backward(g)
print("after two backward passes, grad / grad_once =", np.round(fc.weight.grad / once, 12).ravel())
assert np.allclose(fc.weight.grad, 2 * once)
fc.zero_grad()
print("after zero_grad:", fc.weight.grad.ravel())
assert not fc.weight.grad.any()

# %% [markdown]
# ### `Sequential`: forward in order, backward in reverse
#
# With the contract, a whole network is a loop. `nn.Sequential` is these two methods (`nn/module.py`):
#
# ```python
# def forward(self, x):
#     for module in self.children():
#         x = module.forward(x)
#     return x
#
# def backward(self, grad_out):
#     for module in reversed(self.children()):
#         grad_out = module.backward(grad_out)
#     return grad_out
# ```
#
# and it is itself a Module, so it can be nested and gradient-checked as one layer. AlexNet's classifier head
# (pool5 → fc6 → fc7 → fc8), at a tenth of the width:

# %%
head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 2 * 2, 40, rng=rng), nn.ReLU(),
                     nn.Linear(40, 40, rng=rng), nn.ReLU(), nn.Linear(40, 10, rng=rng))
print(head)
result = check_module(head, rng.normal(size=(3, 16, 2, 2)))
print(result)
assert result.passed

# %% [markdown]
# ## 3. `Linear` derived by hand
#
# fc6, fc7 and fc8 compute, for a batch of $N$ rows $x$ of shape $(N, \text{in})$, weights $W$ of shape
# $(\text{out}, \text{in})$ and bias $b$ of shape $(\text{out},)$,
#
# $$ y = x W^\top + b, \qquad y_{nj} = \sum_i x_{ni} W_{ji} + b_j . $$
#
# Take the derivative of $L$ with respect to one entry at a time, and sum over everything that entry touches
# (the chain rule), with $g_{nj} = \partial L/\partial y_{nj}$:
#
# * $W_{ji}$ appears in $y_{nj}$ for every $n$, multiplied by $x_{ni}$:
#   $\;\partial L/\partial W_{ji} = \sum_n g_{nj} x_{ni}$, that is $\boxed{dW = g^\top x}$, shape (out, in);
# * $b_j$ appears in $y_{nj}$ for every $n$, with coefficient 1: $\;\boxed{db = \sum_n g_{n\cdot}}$, shape (out,);
# * $x_{ni}$ appears in $y_{nj}$ for every $j$, multiplied by $W_{ji}$:
#   $\;\partial L/\partial x_{ni} = \sum_j g_{nj} W_{ji}$, that is $\boxed{dx = g W}$, shape (N, in).
#
# A check that catches most mistakes: **a gradient has the shape of what it is the gradient of**, and there is
# only one way to multiply $g$ (N, out) and $x$ (N, in) into (out, in).
#
# ### A 2×3 example, by hand
#
# Two examples of three features, two outputs:
#
# $$
# x = \begin{pmatrix} 1 & 2 & 0 \\ 0 & 1 & -1 \end{pmatrix},\quad
# W = \begin{pmatrix} 1 & 0 & -1 \\ 2 & 1 & 0 \end{pmatrix},\quad
# b = \begin{pmatrix} 0.5 & -1 \end{pmatrix},\quad
# g = \begin{pmatrix} 1 & -1 \\ 2 & 0 \end{pmatrix}.
# $$
#
# * Forward: row 1 of $y$ is $(1\cdot1 + 2\cdot0 + 0\cdot(-1),\; 1\cdot2 + 2\cdot1 + 0\cdot0) + b = (1.5,\; 3)$;
#   row 2 is $(0 + 0 + 1,\; 0 + 1 + 0) + b = (1.5,\; 0)$.
# * $dW = g^\top x$: row $j$ of $dW$ is $\sum_n g_{nj}\, x_n$. Row 1: $1\cdot(1,2,0) + 2\cdot(0,1,-1) = (1, 4, -2)$.
#   Row 2: $-1\cdot(1,2,0) + 0\cdot(0,1,-1) = (-1,-2,0)$.
# * $db$ = column sums of $g$ = $(1 + 2,\; -1 + 0) = (3, -1)$.
# * $dx = g W$: row $n$ of $dx$ is $\sum_j g_{nj} W_j$. Row 1: $1\cdot(1,0,-1) - 1\cdot(2,1,0) = (-1,-1,-1)$.
#   Row 2: $2\cdot(1,0,-1) + 0 = (2, 0, -2)$.
#
# The library's layer must agree, to the last digit:

# %%
x = np.array([[1., 2, 0], [0, 1, -1]]); g = np.array([[1., -1], [2, 0]])
fc = nn.Linear(3, 2, dtype=np.float64)
fc.weight.data[...] = [[1, 0, -1], [2, 1, 0]]; fc.bias.data[...] = [0.5, -1]
y = fc.forward(x); dx = fc.backward(g)
print("y  =", y.tolist()); print("dW =", fc.weight.grad.tolist()); print("db =", fc.bias.grad.tolist())
print("dx =", dx.tolist())
assert y.tolist() == [[1.5, 3], [1.5, 0]]
assert fc.weight.grad.tolist() == [[1, 4, -2], [-1, -2, 0]] and fc.bias.grad.tolist() == [3, -1]
assert dx.tolist() == [[-1, -1, -1], [2, 0, -2]]

# %% [markdown]
# ### The gradient check
#
# Pencil-and-paper agreement on one example is evidence; the **gradient check** (notebook 11 explains it in
# depth) is a test: it compares `backward` with central differences $\big(f(\theta + \epsilon) - f(\theta -
# \epsilon)\big) / 2\epsilon$ of a scalar $f = \sum g \odot \text{forward}(x)$, entry by entry, in float64.
# Relative errors near $10^{-10}$ mean the derivative is right; a mistake gives errors near 1.

# %%
result = check_module(nn.Linear(5, 4, rng=rng), rng.normal(size=(3, 5)))
print(result)
assert result.passed and result.max_error < 1e-8

# %% [markdown]
# ### `Flatten`
#
# Between pool5 (256 maps of 6×6) and fc6 the network reshapes each example into one row of $256 \cdot 6 \cdot 6 =
# 9216$ numbers. A reshape moves no number and changes none, so its backward pass is the inverse reshape of $g$:
# that is why `Flatten` caches only the input's shape.

# %%
flat = nn.Flatten()
out = flat.forward(rng.normal(size=(2, 256, 6, 6)))
print("pool5 (2, 256, 6, 6) -> fc6 input", out.shape)
assert out.shape == (2, 9216)
print(check_module(nn.Flatten(), rng.normal(size=(2, 3, 2, 2))))

# %% [markdown]
# ## 4. Gates: max routes, add distributes, multiply swaps
#
# CS231n's intuition for backward passes: look at the *operation* that produced a value, and the gradient's path
# follows from it. AlexNet uses all three.
#
# * **max routes**: $\max(a, b)$ passes $g$ to the larger input and 0 to the other. `ReLU` is $\max(0, x)$; a
#   `MaxPool2d` window sends all of its $g$ to the winning pixel (notebook 06).
# * **add distributes**: $a + b$ passes the same $g$ to both. The bias is added to every example and every output
#   pixel, so it collects the sum of all of their gradients: $db = \sum_n g_n$ above, and for a convolution the sum
#   over the batch *and* the positions.
# * **multiply swaps**: $a \cdot b$ sends $g \cdot b$ to $a$ and $g \cdot a$ to $b$. In `Linear`, $W$'s
#   gradient is built from $x$ and $x$'s from $W$; `Dropout` multiplies by its mask, so its backward multiplies
#   by the same mask.

# %%
pool, relu = nn.MaxPool2d(2, 2), nn.ReLU()
window = np.array([[[[1., 5], [3, -2]]]])
pool.forward(window)
print("max routes (MaxPool2d):\n", pool.backward(np.array([[[[10.]]]]))[0, 0])
relu.forward(np.array([-1., 2]))
print("max routes (ReLU): g = (10, 10) ->", relu.backward(np.array([10., 10])))
fc = nn.Linear(1, 1, dtype=np.float64); fc.weight.data[...] = 3.0
fc.forward(np.array([[2.0], [-1.0]])); dx = fc.backward(np.array([[10.0], [10.0]]))
print(f"add distributes (bias of a batch of 2): db = {fc.bias.grad[0]} = 10 + 10")
print(f"multiply swaps (w = 3, x = 2 and -1): dW = {fc.weight.grad[0, 0]} = 10*2 + 10*(-1),  dx = {dx.ravel()} = 10*3")
assert pool.backward(np.array([[[[10.]]]]))[0, 0].tolist() == [[0, 10], [0, 0]]
assert fc.bias.grad[0] == 20 and fc.weight.grad[0, 0] == 10 and dx.ravel().tolist() == [30, 30]

# %% [markdown]
# ## 5. Exercise: write `Linear` yourself
#
# Fill in `forward` and `backward` below: cache what you need, **add** into the gradients, return
# $\partial L/\partial x$. Then run the grader (`tutorials/graders/nb02.py`). On three shapes (a batch of one and a
# single output among them) it compares your layer with `nn.Linear` holding the same weights: the output,
# $\partial L/\partial x$, and `weight.grad` and `bias.grad` after one backward pass and again after a second forward
# and backward on new data, where the gradients must be the sum of both. It also checks that your layer leaves its
# inputs unchanged, and it gradient-checks it. It prints PASS, or the first sub-check that failed and why.

# %%
# EXERCISE: linear
class MyLinear(nn.Module):
    def __init__(self, in_features, out_features, rng=None):
        rng = rng or np.random.default_rng()
        self.weight = nn.Parameter(rng.normal(0, 0.1, size=(out_features, in_features)))
        self.bias = nn.Parameter(np.zeros(out_features))

    def forward(self, x):
        raise NotImplementedError          # y = x W^T + b; remember x for backward

    def backward(self, grad_out):
        raise NotImplementedError          # add g^T x into weight.grad and sum(g) into bias.grad; return g W


# %%
from graders import grade, nb02
grade("linear", nb02.linear, MyLinear)

# %% [markdown]
# ## Summary
#
# * Backpropagation is the chain rule applied layer by layer, from the loss back to the input; each layer turns
#   $\partial L/\partial(\text{output})$ into $\partial L/\partial(\text{input})$ without ever forming a Jacobian.
# * `forward` caches what `backward` needs; `backward` adds into `.grad` and returns the input's gradient;
#   `zero_grad` resets the sums; `Sequential` runs forward in order and backward in reverse.
# * `Linear`: $dW = g^\top x$, $db = \sum_n g_n$, $dx = gW$. `Flatten`: reshape back.
# * Max routes, add distributes, multiply swaps.
#
# ## More exercises
#
# 1. Write a `Scale` module ($y = a x$ with one learnable scalar $a$) and gradient-check it. Which gate is it?
# 2. Use one `Linear` twice in a `Sequential` (the same object at two positions). Is its gradient right, and why
#    does accumulation make it so? What goes wrong with its *cache*?
