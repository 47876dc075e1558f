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
# # 06 · Overlapping max-pooling (§3.4)
#
# A pooling layer shrinks a feature map by summarising each small neighbourhood with one number; max-pooling uses the
# neighbourhood's largest value. §3.4 of the paper describes it as "a grid of pooling units spaced $s$ pixels apart,
# each summarizing a neighborhood of size $z \times z$". The classic choice was $s = z$: the neighbourhoods tile the
# map without overlapping. AlexNet uses $s = 2$, $z = 3$, so neighbouring windows **share** a row or a column, and
# reports that this lowers the top-1 and top-5 error rates by 0.4 % and 0.3 % compared with $s = z = 2$, "which
# produces output of equivalent dimensions". The authors also observe that overlapping-pooling models "find it
# slightly more difficult to overfit".
#
# Max-pooling has no parameters, so its whole story is the forward rule and *where the gradient goes*. In this
# notebook:
#
# 1. the forward pass and the output sizes in AlexNet (55 → 27 → 13 → 6), for $s=2, z=3$ and for $s=z=2$;
# 2. the backward pass, worked by hand on a 5×5 example;
# 3. what overlap changes: one input can receive gradient from several windows;
# 4. **ties**, and why the gradient check must avoid them;
# 5. the gradient check of `nn.MaxPool2d`.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import nn
from nn.gradcheck import check_module

plt.rcParams.update({"figure.dpi": 80})
np.set_printoptions(linewidth=120)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Forward pass and output sizes
#
# For an input $x$ of shape $(N, C, H, W)$, each channel is pooled on its own:
#
# $$
# y[n, c, Y, X] = \max_{0 \le i,\, j < z}\; x[n, c,\; Y s + i,\; X s + j],
# \qquad H_o = \left\lfloor \frac{H - z}{s} \right\rfloor + 1 .
# $$
#
# (The same size formula as a convolution without padding.) AlexNet pools three times (§3.5): after the
# normalised conv1 and conv2, and after conv5. Let's ask `nn.MaxPool2d` for its output sizes, with the paper's
# overlapping windows and with the non-overlapping $s = z = 2$ it is compared against:

# %%
overlapping, tiling = nn.MaxPool2d(kernel_size=3, stride=2), nn.MaxPool2d(kernel_size=2, stride=2)
print(overlapping, "  vs  ", tiling)
for where, size in [("after conv1 (96 maps)", 55), ("after conv2 (256 maps)", 27), ("after conv5 (256 maps)", 13)]:
    a = overlapping.output_shape((1, 1, size, size))[2]
    b = tiling.output_shape((1, 1, size, size))[2]
    last_seen = (b - 1) * 2 + 1                        # last row a 2x2 window with stride 2 reaches
    print(f"{where:24} {size:>3} -> z=3,s=2: {a:>2}   z=2,s=2: {b:>2}   (z=2 never looks at row {size - 1}: "
          f"its last window ends at row {last_seen})")
print("fc6 input: 256 * 6 * 6 =", 256 * 6 * 6)
for size, out in [(55, 27), (27, 13), (13, 6)]:          # the same sizes both ways; 3x3/2 covers odd maps exactly
    assert overlapping.output_shape((1, 1, size, size))[2] == tiling.output_shape((1, 1, size, size))[2] == out
    assert 2 * (out - 1) + 3 == size


# %% [markdown]
# The sizes agree, as §3.4 promised, so the comparison in the paper changes nothing else in the network. A small
# thing the table reveals: 55, 27 and 13 are odd, and 2×2 windows with stride 2 cannot reach the last row and column,
# which are silently dropped. The 3×3 windows with stride 2 cover an odd-sized map exactly: $2(H_o - 1) + 3 = H$.
#
# Here is the forward pass written as a plain loop, our reference. `np.argmax` of the flattened window returns the
# **first** maximum in row-major order; remember that for section 4.

# %%
def maxpool_naive(x, z, s):
    '''Forward and backward bookkeeping by loops: returns y and, for every output, the (row, col) of its max.'''
    n, c, h, w = x.shape
    ho, wo = (h - z) // s + 1, (w - z) // s + 1
    y = np.zeros((n, c, ho, wo), x.dtype)
    where = np.zeros((n, c, ho, wo, 2), int)
    for a in range(n):
        for b in range(c):
            for Y in range(ho):
                for X in range(wo):
                    window = x[a, b, Y * s:Y * s + z, X * s:X * s + z]
                    i, j = divmod(int(np.argmax(window)), z)     # first maximum, row-major
                    y[a, b, Y, X] = window[i, j]
                    where[a, b, Y, X] = (Y * s + i, X * s + j)
    return y, where

def maxpool_backward_naive(grad_out, where, input_shape):
    grad_in = np.zeros(input_shape)
    for idx in np.ndindex(grad_out.shape):
        r, col = where[idx]
        grad_in[idx[0], idx[1], r, col] += grad_out[idx]        # += : a pixel may win several windows
    return grad_in

x = rng.normal(size=(2, 3, 11, 12))
pool = nn.MaxPool2d(3, 2)
y_ref, where = maxpool_naive(x, 3, 2)
assert np.array_equal(pool(x), y_ref)
g = rng.normal(size=y_ref.shape)
assert np.allclose(pool.backward(g), maxpool_backward_naive(g, where, x.shape))
print("nn.MaxPool2d agrees with the loops, forward and backward:", y_ref.shape)

# %% [markdown]
# ## 2. Where the gradient goes: a worked example
#
# The maximum of a few numbers depends only on the largest one; small changes to the others do not change it. So
#
# $$
# \frac{\partial y[Y, X]}{\partial x[r, c]} =
# \begin{cases} 1 & \text{if } (r, c) \text{ is the position of the maximum of window } (Y, X),\\
# 0 & \text{otherwise,} \end{cases}
# \qquad\Longrightarrow\qquad
# \frac{\partial L}{\partial x[r, c]} = \sum_{(Y, X):\ (r, c) = \operatorname{argmax}(Y, X)} \frac{\partial L}{\partial y[Y, X]} .
# $$
#
# In words: each window hands its whole upstream gradient to the one input that won it; every other input gets zero.
# So backward needs to know *which* input won. `nn.MaxPool2d` stores no winner: it keeps the input and the output,
# and backward finds each window's winner again by comparing them at the window's offsets in row-major order
# (`pool._argmax` shows what it finds: the winner's offset inside the window, 0 to 8). Let's do it on a 5×5 map, pooled with $z = 3$, $s = 2$ into 2×2. To see who
# sends what, the upstream gradients are 1, 10, 100 and 1000: the digits of each input's gradient then spell out the
# windows it won.

# %%
x = np.array([[ 1,  2,  3,  4,  0],
              [ 5,  6, 20,  7,  8],
              [ 9, 10, 11, 12, 13],
              [14, 15, 30, 17, 18],
              [19, 21, 16, 22, 23]], dtype=np.float64)[None, None]
pool = nn.MaxPool2d(3, 2)
y = pool(x)
g = np.array([[1., 10.], [100., 1000.]])[None, None]
dx = pool.backward(g)
print("input x (windows: rows/cols 0-2 and 2-4; row 2 and column 2 are shared):\n", x[0, 0].astype(int))
print("\noutput y = max over each 3x3 window:\n", y[0, 0].astype(int))
print("\nwinner's offset inside its window (i*3 + j), as nn.MaxPool2d finds it:\n", pool._argmax[0, 0])
print("\nupstream gradient dL/dy:\n", g[0, 0].astype(int))
print("\ndL/dx:\n", dx[0, 0].astype(int))
assert dx[0, 0, 1, 2] == 11 and dx[0, 0, 3, 2] == 1100 and dx.sum() == 1111     # read off in the text below


# %% [markdown]
# Read it off: the value 20 at row 1, column 2 lies in column 2, which the two top windows share; it is the maximum
# of both, so it receives $1 + 10 = 11$. The value 30 at row 3, column 2 wins both bottom windows and receives
# $100 + 1000 = 1100$. Every other input, including 23, the largest value of the bottom-right corner *that is
# not shared*, gets nothing, because a larger shared value beat it. With non-overlapping $2 \times 2$ windows no input
# could ever collect from two windows.
#
# ## 3. What overlap changes
#
# With $s = 2$, $z = 3$, the even rows and columns (except the outer ones) are shared by two windows along each axis,
# so an input can belong to 1, 2 or 4 windows. Below: how many windows contain each pixel of an 11×11 map, and then,
# on random inputs at AlexNet's first pooling size, the share of inputs that receive any gradient at all, for both
# layouts.

# %%
def windows_per_pixel(size, z, s):
    ho = (size - z) // s + 1
    count = np.zeros(size, int)
    for Y in range(ho):
        count[Y * s:Y * s + z] += 1
    return np.outer(count, count)

print("z=3, s=2 on an 11x11 map: windows containing each pixel\n", windows_per_pixel(11, 3, 2))
print("\nz=2, s=2 on an 11x11 map (the last row/column belongs to no window)\n", windows_per_pixel(11, 2, 2))

x = rng.normal(size=(8, 16, 55, 55))                    # random maps: no ties
for z, s in [(3, 2), (2, 2)]:
    pool = nn.MaxPool2d(z, s)
    out = pool(x)
    dx = pool.backward(np.ones_like(out))
    print(f"\nz={z}, s={s}: {out.shape[2]}x{out.shape[3]} outputs; inputs receiving gradient: "
          f"{(dx > 0).mean():5.1%}; largest number of windows won by one input: {int(dx.max())}")
    assert round(100 * (dx > 0).mean()) == (16 if z == 3 else 24) and dx.max() == (4 if z == 3 else 1)

# %%
# The same numbers as pictures: how many windows cover each pixel (top), and how much gradient each input of one
# random 27x27 map receives when every window sends dL/dy = 1 (bottom).
import _helpers
one_map = rng.normal(size=(1, 1, 27, 27))
_helpers.plot_pooling_overlap(windows_per_pixel, one_map)   # the figure's code is in _helpers.py

# %% [markdown]
# With tiling $2\times2$ windows exactly one input in four (25 %) receives gradient, minus the dropped border. With
# overlapping $3\times3$ windows each window holds more candidates, so a window's winner is more often a value that
# also wins a neighbour: the 729 windows of a 27×27 output are won by fewer distinct inputs (about 16 % of the
# 55×55 inputs here, against 24 % for tiling windows), and some inputs collect from two or four windows. The network
# sees a slightly smoother, more shift-tolerant summary: a feature that moves by one pixel often stays inside the
# same window. Whether that is *why* it overfits less, the paper does not claim; it reports the measurement.
#
# ## 4. Ties
#
# If two inputs in a window share the maximum value, which one gets the gradient? Mathematically, neither answer is
# right: $\max(a, b)$ has no derivative at $a = b$ (its slope is 1 in $a$ just above the tie and 0 just below). Any
# implementation has to pick; `nn.MaxPool2d` gives the whole gradient to **the first maximum in row-major order**
# (its backward visits the window's offsets in row-major order and routes the gradient to the first input that equals
# the window's output), the same rule as `np.argmax` and as our naive loop. Ties are common in AlexNet: pooling follows a ReLU, and after a ReLU whole
# windows are often exactly 0.

# %%
x = np.array([[0., 0., 0.],
              [0., 0., 0.],
              [0., 0., 5.]])[None, None]                      # e.g. after a ReLU
pool = nn.MaxPool2d(2, 1)
y = pool(x)
dx = pool.backward(np.ones_like(y))
print("input:\n", x[0, 0], "\noutput:\n", y[0, 0])
print("dL/dx for dL/dy = 1 everywhere:\n", dx[0, 0])
assert dx[0, 0].tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]         # three tied windows -> their top-left zeros

# %% [markdown]
# The three all-zero windows each send their gradient to their top-left element; the bottom-right window is won by 5.
#
# Why is this harmless for training? Not because ties are rare (they are not), but because of where they come from.
# The ties that occur are between **zeros made by a ReLU**; ties between positive values would need two real-valued
# activations to coincide exactly, which practically never happens. And ReLU's backward multiplies the gradient by
# $[x > 0]$, which is 0 at every one of those zeros: whichever tied zero the pooling layer picks, the ReLU below it
# throws that gradient away. Through ReLU then max-pooling, the gradient that reaches the layer below is the same
# whatever the tie rule:

# %%
pre_relu = np.array([[-1., -2., -0.5],
                     [-3., -1., -4.],
                     [-2., -1., 5.]])[None, None]              # a conv output; the ReLU makes all but 5 zero
relu, pool = nn.ReLU(), nn.MaxPool2d(2, 1)
pool(relu(pre_relu))
through_pool = pool.backward(np.ones((1, 1, 2, 2)))
print("gradient the pooling layer sends (first zero of each tied window):\n", through_pool[0, 0])
print("gradient after ReLU's backward:\n", relu.backward(through_pool)[0, 0])
# any other tie rule sends the tied windows' gradients to other zeros; ReLU zeroes them all the same
assert relu.backward(through_pool)[0, 0].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]

# %% [markdown]
# Any choice is also a valid *subgradient*. But ties do break numerical gradient checking. At a tie the central difference
# $\big(f(x + \varepsilon e_i) - f(x - \varepsilon e_i)\big)/2\varepsilon$ sees slope 1 on one side and 0 on the other
# and reports their average, $\tfrac12$, while the analytic gradient says 1 for the first maximum and 0 for the others.
# A 2×2 example:

# %%
x = np.array([[3., 3.], [1., 2.]])[None, None]                 # a tie between the two 3s
pool = nn.MaxPool2d(2, 2)
pool(x)
analytic = pool.backward(np.ones((1, 1, 1, 1)))
eps, numeric = 1e-6, np.zeros_like(x)
for idx in np.ndindex(x.shape):
    plus, minus = x.copy(), x.copy()
    plus[idx] += eps; minus[idx] -= eps
    numeric[idx] = (pool(plus).sum() - pool(minus).sum()) / (2 * eps)
print("analytic gradient (first maximum wins):\n", analytic[0, 0])
print("central differences:\n", numeric[0, 0].round(6))
assert analytic[0, 0].tolist() == [[1, 0], [0, 0]] and np.allclose(numeric[0, 0], [[0.5, 0.5], [0, 0]])

tied = rng.integers(0, 3, size=(2, 2, 6, 6)).astype(np.float64)   # only three distinct values: many ties
tied_result = check_module(nn.MaxPool2d(3, 2), tied)
print("\ncheck_module on an input full of ties:\n", tied_result)
assert not tied_result.passed and tied_result.max_error > 0.1                  # the check "fails", below


# %% [markdown]
# The "failure" is the check's, not the layer's: a finite difference measures a two-sided slope that does not exist.
# So a gradient check of max-pooling must use inputs with **no ties, and no near-ties** either: if two candidates
# differ by less than $\varepsilon$, the perturbation itself can swap the winner. The project's checker
# (`python -m nn.gradcheck`) builds its pooling inputs from a random permutation of distinct values spaced well
# apart (much more than $\varepsilon = 10^{-6}$), and so do we:
#
# ## 5. The gradient check

# %%
def distinct(shape):
    '''All entries different and at least ~1e-2 apart: no ties, no swaps under a 1e-6 perturbation.'''
    values = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    return (values - values.mean()) / values.size * 4 + 1e-3 * rng.random(shape)

for z, s, shape in [(3, 2, (2, 3, 9, 8)), (2, 2, (2, 2, 6, 6)), (3, 2, (1, 2, 13, 13))]:
    result = check_module(nn.MaxPool2d(z, s), distinct(shape))
    print(f"--- MaxPool2d(z={z}, s={s}) on {shape}\n{result}\n")
    assert result.passed

# %% [markdown]
# ## Exercise (graded): max-pooling's backward pass, with the tie rule
#
# Write the backward pass of `nn.MaxPool2d` as a function of the input `x` and the upstream gradient: each window
# sends its whole gradient to its winner, the **first** maximum in row-major order when several inputs tie (section 4),
# and a pixel that wins several windows collects all their gradients. Section 1's loops visit one window at a time;
# write it instead as `nn.MaxPool2d` does, with one loop over the $z^2$ offsets $(i, j)$ of the window: the strided
# slice `x[:, :, i::s, j::s]` (cut to $H_o \times W_o$) is what every window sees at that offset, and the windows whose
# maximum it holds, and whose winner is not found yet, route their gradient there.
#
# The grader (`tutorials/graders/nb06.py`) compares your gradient with `nn.MaxPool2d.backward` on distinct values
# (overlapping and tiling windows, non-square, stride 1 and 3) and on inputs full of ties: two maxima in one window
# where row-major and column-major order disagree, ties on a column two windows share, all-zero windows after a ReLU,
# and maps of only three distinct values. It checks that your function leaves its inputs unchanged, and gradient-checks
# it on inputs without ties (`nn.MaxPool2d`'s forward with your backward).

# %%
# EXERCISE: maxpool-backward
def maxpool_backward(x, grad_out, kernel_size=3, stride=2):
    """x (N, C, H, W), grad_out (N, C, Ho, Wo) -> dL/dx (N, C, H, W)."""
    raise NotImplementedError        # for each offset (i, j), in row-major order: route to the first input equal to the max


# %%
from graders import grade, nb06
grade("maxpool-backward", nb06.maxpool_backward, maxpool_backward)


# %% [markdown]
# ## Exercise (graded): average pooling, forward and backward
#
# Write a `z`×`z` average pooling with stride `s` as a Module: every output is the mean of its window, so every
# input in a window receives $1/z^2$ of that window's gradient (overlapping windows add up, as in max-pooling).
# The grader compares your forward and backward passes with loops over the windows in five geometries (AlexNet's
# $z = 3$, $s = 2$, non-square, $z = s = 2$ on odd sizes, stride 1, a stride larger than the window), using one layer
# for two inputs of different shapes; it checks that your layer leaves its inputs unchanged, and gradient-checks it.

# %%
# EXERCISE: avg-pool
class AvgPool2d(nn.Module):
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError


# %%
grade("avg-pool", nb06.avg_pool, AvgPool2d)


# %% [markdown]
# ## Summary
#
# * Max-pooling with $z \times z$ windows every $s$ pixels gives $\lfloor (H - z)/s \rfloor + 1$ outputs: in AlexNet
#   55 → 27 → 13 → 6 with the paper's $z = 3, s = 2$, the same sizes as $z = s = 2$ (which drops the last row and
#   column of every odd-sized map).
# * Backward: each window's upstream gradient goes, whole, to its winning input, which `nn.MaxPool2d` finds again
#   from the input and output it keeps.
# * With overlap ($s < z$), one input can win several windows and then **adds** their gradients; most inputs get none.
# * Ties have no derivative. `nn.MaxPool2d` gives the gradient to the first maximum in row-major order. In AlexNet the
#   ties are zeros from a ReLU, whose backward zeroes their gradient whatever the rule; gradient checks must use
#   inputs without ties, or the finite differences report $\tfrac12$.
#
# ## Exercises
#
# 1. **Pooling with im2col.** With `groups=C`, `nn.im2col` returns one $(z^2 \times N H_o W_o)$ matrix per channel.
#    Write max-pooling as `cols.max(axis=1)` plus `cols.argmax(axis=1)`, and its backward pass with `nn.col2im`
#    (build a column matrix that holds the upstream gradient at each column's argmax and zeros elsewhere). Check it
#    against `nn.MaxPool2d` on random inputs. What does the extra memory cost at 55×55×96 and batch 128?
# 2. **Shift tolerance.** Section 3 says that with overlapping windows a feature that moves by one pixel often stays
#    inside the same window. Measure it: take random maps after a ReLU at 55×55, shift them by one pixel to the right
#    (`np.roll`, then drop the wrapped column), and count the share of pooled outputs that do not change, for
#    $z = 3, s = 2$ and for $z = s = 2$. Then shift by two pixels. Which layout is more tolerant, and by how much?
#    (And why does your `AvgPool2d` pass `check_module` even on an input full of ties?)
# 3. **Another tie rule.** Change the naive loop so that ties go to the *last* maximum, or are split evenly between
#    all tied inputs. Do both still pass `check_module` on `distinct` inputs? Which one matches the finite difference
#    on the 2×2 tie example above, and is that a reason to prefer it?
