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
# # 11 · Gradient checking: how do you know your backward pass is right?
#
# Every layer in `nn` has a hand-written `backward`. A wrong one rarely crashes: the network still trains, just a bit
# worse, and nothing tells you why. The cure is cheap and decisive: compare what `backward` returns with a
# **numerical derivative** of `forward`. This notebook explains how `nn.gradcheck` does that and why each of its choices
# matters:
#
# 1. central differences, and the V-shaped error curve that explains the choice of step and of float64;
# 2. the relative error, and what its size tells you;
# 3. random directions for large tensors;
# 4. why the checked scalar is $\sum g \odot y$ with a **random** $g$, not $\sum y$: a bug that the sum hides;
# 5. what a wrong backward looks like (local response normalization without its cross term), and a false alarm at a kink;
# 6. checking a layer of your own from the command line, `python -m nn.gradcheck --layer mymodule:factory`.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # our matrices are tiny: threads cost more than they save
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import nn
from nn.gradcheck import check_module, relative_error

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 1. Central differences
#
# A layer maps an array $x$ to an array $y$; its backward maps an upstream gradient $g = \partial L/\partial y$ to
# $\partial L/\partial x$. To test it we need a scalar. Take $f(x) = \sum_k g_k\, y_k(x)$ for a fixed $g$: then
# $\partial f/\partial x$ is exactly what `backward(g)` should return. Taylor's theorem gives two ways to estimate a
# derivative of $f$ numerically, with $e_i$ the $i$-th unit vector:
#
# $$
# \text{forward:}\ \ \frac{f(x + \epsilon e_i) - f(x)}{\epsilon} = \frac{\partial f}{\partial x_i} + \frac{\epsilon}{2}\frac{\partial^2 f}{\partial x_i^2} + O(\epsilon^2),
# \qquad
# \text{central:}\ \ \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2\epsilon} = \frac{\partial f}{\partial x_i} + \frac{\epsilon^2}{6}\frac{\partial^3 f}{\partial x_i^3} + O(\epsilon^4).
# $$
#
# In the central difference the even terms cancel, so its **truncation error** is $O(\epsilon^2)$ instead of $O(\epsilon)$. That
# suggests a tiny $\epsilon$, but the computer has its own error: $f$ is computed with a relative rounding error of about
# $u$ (the unit roundoff: $1.1 \times 10^{-16}$ in float64, $6 \times 10^{-8}$ in float32), and dividing a difference of two
# rounded values by $2\epsilon$ turns that into a **rounding error** of about $u\,|f|/\epsilon$. The total,
#
# $$
# \text{error}(\epsilon) \approx \frac{\epsilon^2}{6}|f'''| + \frac{u\,|f|}{\epsilon},
# $$
#
# falls, then rises: a V on a log-log plot, with its bottom near $\epsilon \approx u^{1/3}$, where the error is about $u^{2/3}$. That is
# $\epsilon \approx 10^{-5}$ with errors near $10^{-10}$ in float64, but $\epsilon \approx 10^{-2}$ with errors near $10^{-5}$ at best in float32.
#
# Let us measure it on a real layer, local response normalization (§3.3), with a large $\alpha$ so that it is strongly
# nonlinear. The reference is `backward` in float64, which the checks below confirm to be right; we differentiate
# $f$ along one random unit direction $d$ (more on directions in section 3).

# %%
rng = np.random.default_rng(0)
x64 = rng.normal(size=(2, 8, 3, 3))
g64 = rng.normal(size=x64.shape)
d = rng.normal(size=x64.shape); d /= np.linalg.norm(d)
lrn = nn.LocalResponseNorm(size=5, alpha=1.0, beta=0.75, k=2.0)

lrn.forward(x64)
exact = float((lrn.backward(g64) * d).sum())        # <df/dx, d> from the backward pass, float64

def f(x, dtype):
    # f(x) = sum(g * LRN(x)), computed entirely in `dtype`
    return (lrn.forward(x.astype(dtype)) * g64.astype(dtype)).sum(dtype=dtype)

epsilons = np.logspace(-13, 0, 40)
curves = {}
for dtype in [np.float64, np.float32]:
    xd = x64.astype(dtype)
    central, forward = [], []
    for eps in epsilons:
        step = (eps * d).astype(dtype)
        plus, minus, zero = f(xd + step, dtype), f(xd - step, dtype), f(xd, dtype)
        central.append(abs(float(plus - minus) / (2 * eps) - exact) / abs(exact))
        forward.append(abs(float(plus - zero) / eps - exact) / abs(exact))
    curves[np.dtype(dtype).name] = (np.array(central), np.array(forward))

fig, ax = plt.subplots(figsize=(8, 4.5))
for name, color in [("float64", "C0"), ("float32", "C3")]:
    central, forward = curves[name]
    ax.loglog(epsilons, np.maximum(central, 1e-17), "o-", color=color, ms=3, label=f"{name}, central")
    ax.loglog(epsilons, np.maximum(forward, 1e-17), "x:", color=color, ms=4, label=f"{name}, forward")
    best = np.argmin(central)
    print(f"{name}: best central-difference error {central[best]:.1e} at eps = {epsilons[best]:.0e}")
ax.axvline(1e-6, color="gray", lw=0.8, ls="--")
ax.text(1.3e-6, 3e-15, "nn.gradcheck's eps", color="gray")
ax.set(xlabel=r"step $\epsilon$", ylabel="relative error of the derivative", ylim=(1e-16, 10),
       title="Truncation (right) vs rounding (left): the V of finite differences")
ax.legend(fontsize=9, loc="lower left"); plt.tight_layout(); plt.show()
best64, best32 = curves["float64"][0].min(), curves["float32"][0].min()
assert best64 < 1e-9 and 1e-6 < best32 < 1e-4                  # "1e-10 or below" and "about 1e-5" (text below)
assert 1e-3 <= epsilons[np.argmin(curves["float32"][0])] <= 1e-1 and curves["float32"][0][0] > 0.5   # tiny steps: garbage


# %% [markdown]
# Read the plot from the right: for large $\epsilon$ the error is truncation, slope 2 for the central difference and slope 1
# for the forward one. Moving left, the rounding error ($\propto 1/\epsilon$, slope $-1$) takes over. In float32 the
# bottom of the V is at about $10^{-5}$, near $\epsilon = 10^{-2}$, and at tiny steps $x + \epsilon d$ rounds back to $x$ and the estimate
# is garbage (error 1). In float64 the bottom is around $10^{-10}$ or below, over a wide range of steps: `nn.gradcheck` uses
# $\epsilon = 10^{-6}$, comfortably inside it.
#
# This is why **gradient checks run in float64**. `check_module` casts the module and the input to float64 before it
# starts (it converts your module in place: pass it a copy if you want to keep a float32 one). A float32 check could only
# tell you "correct to about $10^{-5}$" (in practice such checks use tolerances near $10^{-2}$), and as section 5 shows,
# real bugs can hide below that.
#
# In code, the elementwise check is just this loop (what `check_module` does for small tensors):

# %%
def numeric_gradient(f, x, eps=1e-6):
    # Central differences of the scalar function f at x, one entry at a time.
    grad = np.zeros_like(x)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)     # views: changing flat changes x
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps; plus = f(x)
        flat[i] = original - eps; minus = f(x)
        flat[i] = original
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad

x = rng.normal(size=(1, 6, 2, 2))
g = rng.normal(size=x.shape)
numeric = numeric_gradient(lambda x: float((lrn.forward(x) * g).sum()), x)
lrn.forward(x)
analytic = lrn.backward(g)
print("relative error, LRN backward vs central differences:", relative_error(analytic, numeric))
assert relative_error(analytic, numeric) < 1e-8

# %% [markdown]
# ## 2. The relative error
#
# `check_module` summarises each tensor with
#
# $$
# \text{rel. error} = \frac{\lVert a - n \rVert}{\max(\lVert a \rVert, \lVert n \rVert)}
# $$
#
# with $a$ the analytic and $n$ the numeric gradient, flattened, over all checked entries. Why relative: gradients in a
# network span many orders of magnitude (an LRN layer with the paper's $\alpha = 10^{-4}$, a loss averaged over a batch of
# 128), so an absolute threshold that is strict for one layer is meaningless for another. Why the max of the two norms:
# the measure is symmetric and stays between 0 and 2 even when one of the gradients is zero (then it is exactly 1).
#
# Rules of thumb, in float64 with $\epsilon = 10^{-6}$:
#
# | relative error | usually means |
# |---|---|
# | $< 10^{-7}$ | correct (typical: $10^{-10}$ to $10^{-8}$) |
# | $10^{-6}$ to $10^{-3}$ | suspicious: a small term missing or wrong, or a kink (ReLU, max-pool) within $\epsilon$ of the input |
# | $\approx 1$ or more | wrong: a transposed or permuted gradient, a sign, a gradient that should not be zero |
#
# `check_module` passes a tensor below `tolerance=1e-6`.

# %%
a = np.array([1.0, 2.0, 3.0])
for name, n in [("identical", a), ("off by 1e-9", a + 1e-9), ("one entry 1 % off", a * [1, 1, 1.01]),
                ("wrong sign", -a), ("zero", 0 * a), ("twice as large", 2 * a)]:
    print(f"{name:>18}: {relative_error(a, n):.2e}")
assert [relative_error(a, n) for n in (a, -a, 0 * a, 2 * a)] == [0, 2, 1, 0.5]      # the table's last rows

# %% [markdown]
# ## 3. Random directions for large tensors
#
# The elementwise check costs two forward passes per entry. AlexNet's conv1 weight alone has $96 \times 3 \times 11 \times 11 = 34{,}848$
# entries, fc6's has 37.7 million: far too many. Instead we can check the gradient along a few random unit directions $d$,
# using the exact identity
#
# $$
# \langle \nabla f(x), d \rangle = \frac{d}{dt} f(x + t d)\Big|_{t=0} \approx \frac{f(x + \epsilon d) - f(x - \epsilon d)}{2\epsilon},
# $$
#
# which costs two forward passes per direction, whatever the size of the tensor. A wrong gradient $a = \nabla f + \delta$ gives a wrong
# projection unless $\delta$ happens to be orthogonal to $d$, which for a random $d$ has probability zero. `check_module`
# switches to `directions=8` random directions for tensors with more than `max_elements=64` entries. Below, a small
# convolution, and a linear layer whose backward is wrong in **one** entry of its 4096-entry weight gradient (10 % off):
# eight random directions catch it.

# %%
print("Conv2d(3, 8, 5, padding=2) on a (2, 3, 12, 12) input:")
print(check_module(nn.Conv2d(3, 8, 5, padding=2, rng=rng), rng.normal(size=(2, 3, 12, 12))))

class OneBadEntry(nn.Linear):
    # A Linear layer whose weight gradient is 10 % too large in a single entry.
    def backward(self, grad_out):
        before = self.weight.grad[3, 5]
        grad_in = super().backward(grad_out)
        self.weight.grad[3, 5] += 0.1 * (self.weight.grad[3, 5] - before)
        return grad_in

print("\nLinear(64, 64) with one wrong entry in dL/dW:")
bad_layer, bad_input = OneBadEntry(64, 64, rng=rng), rng.normal(size=(8, 64))
bad = check_module(bad_layer, bad_input)
print(bad)
directions_error = bad.tensors[1].error

# What an entry-by-entry check of the same weight would say (4096 entries: 8192 forward passes of a tiny layer),
# and why the number is what it is: the one wrong entry carries 0.1 |dW[3,5]| of error against ||dW|| in total.
elementwise = check_module(OneBadEntry(64, 64, rng=np.random.default_rng(5)), bad_input, max_elements=4096)
dW = bad_layer.weight.grad / (1 + 0.1 * (np.arange(4096).reshape(64, 64) == 3 * 64 + 5))   # the true gradient
typical = np.sqrt((dW ** 2).mean())
print(f"\n|dW[3,5]| = {abs(dW[3, 5]):.3f}, a typical entry (rms) = {typical:.3f}")
print(f"predicted 0.1 |dW[3,5]| / ||dW|| = {0.1 * abs(dW[3, 5]) / np.linalg.norm(dW):.2e}; "
      f"entry by entry: {elementwise.tensors[1].error:.2e}; along 8 random directions: {directions_error:.2e}")
predicted = 0.1 * abs(dW[3, 5]) / np.linalg.norm(dW)
assert not bad.passed and 3e-6 < directions_error < 3e-5             # "about 1e-5, ten times the tolerance"
assert abs(elementwise.tensors[1].error / predicted - 1) < 0.01      # entry by entry: exactly the predicted ratio
assert abs(dW[3, 5]) < typical / 10                                  # this entry happens to be a small one


# %% [markdown]
# The check fails, but only just: the weight's relative error is about $10^{-5}$, ten times the tolerance, where a
# correct gradient gives $10^{-9}$. Why so small, when one entry is 10 % off? Because the relative error measures the
# bad entry against the *whole* gradient: the error vector is $0.1\,\partial L/\partial W_{3,5}$ in one place and 0 in
# the other 4095, so the relative error is $0.1\,|\partial L/\partial W_{3,5}| / \lVert \partial L/\partial W \rVert$,
# which would be $0.1/\sqrt{4096} \approx 1.6 \times 10^{-3}$ if every entry had the same size, and is a hundred times less
# here, because this entry happens to be a small one (0.02 against a typical 2.9, printed above). The entry-by-entry
# check reports exactly that ratio.
#
# A random direction **dilutes** a single bad entry further: a unit direction $d$ puts only about $1/\sqrt{n}$ of its
# length on any one entry, so the wrong entry moves the projection $\langle a, d\rangle$ by $0.1\,a_{3,5}\,d_{3,5}$, a
# random fraction of an already small error, while the other 4095 entries make up the rest of the projection. Eight
# directions give eight such samples; the result can land a few times above or below the elementwise figure. So:
# a check along random directions catches a *systematic* bug (a wrong formula touches every entry) at once, but one
# wrong entry out of thousands only when it is a large one. That is why `check_module` checks small tensors entry by
# entry, and why the tests run each layer on small sizes where every entry is checked.
#
# ## 4. Why a random upstream gradient, not the sum of the outputs
#
# A popular shortcut is to check $f(x) = \sum_k y_k$, i.e. an upstream gradient of all ones. It hides a whole class of
# bugs: **any backward that moves the upstream gradient to the wrong place** (a transpose, a permutation, a reshape where a
# transpose was needed, reversed indices) is invisible when every upstream entry is the same number 1.
#
# Here is a layer that swaps the height and width axes, $y = x^\top$ per channel. Its correct backward transposes the gradient
# back. The buggy one **reshapes** it to the input's shape instead, the classic reshape-vs-transpose slip (it has the right shape,
# so nothing complains). We check it twice: with the sum of outputs (through a tiny "loss" whose `backward` returns ones,
# which `check_module` accepts like any loss) and with `check_module`'s default, a fixed random $g$.

# %%
class SwapHW(nn.Module):
    # y[n, c, i, j] = x[n, c, j, i]
    def __init__(self, buggy=False):
        self.buggy = buggy
        self._shape = None

    def forward(self, x):
        self._shape = x.shape
        return x.transpose(0, 1, 3, 2)

    def backward(self, grad_out):
        if self.buggy:
            return grad_out.reshape(self._shape)        # right shape, wrong place
        return grad_out.transpose(0, 1, 3, 2)

class SumOfOutputs:
    # A "loss" f(y) = sum(y): its upstream gradient is all ones.
    def forward(self, y, labels=None):
        self._shape = y.shape
        return float(y.sum())

    def backward(self):
        return np.ones(self._shape)

x = rng.normal(size=(2, 3, 4, 5))
for buggy in [False, True]:
    name = "buggy backward (reshape)" if buggy else "correct backward (transpose)"
    with_ones = check_module(SwapHW(buggy), x, loss=SumOfOutputs())
    with_random = check_module(SwapHW(buggy), x)
    print(f"{name:<30} sum of outputs: {with_ones.max_error:.1e} {'PASS' if with_ones.passed else 'FAIL'}   "
          f"random upstream: {with_random.max_error:.1e} {'PASS' if with_random.passed else 'FAIL'}")
    assert with_ones.passed and with_random.passed != buggy and (not buggy or with_random.max_error > 0.5)


# %% [markdown]
# With all-ones upstream the buggy layer passes with a perfect score; with a random upstream its error is of order 1. The
# same goes for a max-pool that routes gradients to the wrong window or a convolution whose `col2im` scatters to the wrong
# pixels. That is why `nn.gradcheck` always uses $f(x) = \sum g \odot \text{module}(x)$ with a random $g$ (or a real loss with
# real labels, whose gradient also varies from entry to entry).
#
# ## 5. What a wrong backward looks like: LRN without its cross term
#
# The LRN backward (§3.3, derived in `nn/normalization.py`) has two parts. With $s_i = k + \alpha \sum_{j \in W(i)} a_j^2$ and
# $b_i = a_i s_i^{-\beta}$:
#
# $$
# \frac{\partial L}{\partial a_j} = \underbrace{g_j\, s_j^{-\beta}}_{\text{direct}} \;-\; \underbrace{2\alpha\beta\, a_j \sum_{i:\, j \in W(i)} \frac{g_i\, b_i}{s_i}}_{\text{cross term: } a_j \text{ also appears in its neighbours' } s_i}
# $$
#
# Forgetting the cross term is the classic mistake (it treats the denominator as a constant). A subtler one keeps only
# the $i = j$ part of the cross term and forgets the neighbours. Both below, for three values of $\alpha$:

# %%
class LRNNoCrossTerm(nn.LocalResponseNorm):
    def backward(self, grad_out):
        return grad_out * self._scale ** (-self.beta)                     # direct term only

class LRNDiagonalOnly(nn.LocalResponseNorm):
    def backward(self, grad_out):
        x, scale, out = self._input, self._scale, self._out
        return grad_out * scale ** (-self.beta) - 2 * self.alpha * self.beta * x * grad_out * out / scale   # i = j only

x = rng.normal(size=(2, 8, 3, 3)) * 3
print(f"{'alpha':>8}   {'correct':>10}   {'no cross term':>14}   {'diagonal only':>14}")
for alpha in [1e-4, 1e-2, 1.0]:
    errors = [check_module(cls(size=5, alpha=alpha, beta=0.75, k=2.0), x).max_error
              for cls in [nn.LocalResponseNorm, LRNNoCrossTerm, LRNDiagonalOnly]]
    print(f"{alpha:>8g}   " + "   ".join(f"{e:>{w}.1e}" for e, w in zip(errors, [10, 14, 14])))
    assert errors[0] < 1e-7 and (5e-4 < errors[1] < 5e-3 if alpha == 1e-4 else errors[1] > 0.1)   # "about 1e-3"

# %%
lrn_bad = LRNNoCrossTerm(size=5, alpha=1.0, beta=0.75, k=2.0)
lrn_good = nn.LocalResponseNorm(size=5, alpha=1.0, beta=0.75, k=2.0)
x = rng.normal(size=(1, 8, 2, 2)) * 2
g = rng.normal(size=x.shape)
numeric = numeric_gradient(lambda x: float((lrn_good.forward(x) * g).sum()), x)
fig, ax = plt.subplots(figsize=(5, 4.5))
for layer, style, label in [(lrn_good, "o", "nn.LocalResponseNorm"), (lrn_bad, "x", "no cross term")]:
    layer.forward(x)
    ax.plot(numeric.ravel(), layer.backward(g).ravel(), style, label=label)
lim = np.abs(numeric).max() * 1.1
ax.plot([-lim, lim], [-lim, lim], "k", lw=0.6)
ax.set(xlabel="numeric gradient", ylabel="analytic gradient (backward)", title=r"LRN, $\alpha = 1$: every entry")
ax.legend(); plt.tight_layout(); plt.show()

# %% [markdown]
# Three lessons:
#
# * **A wrong backward is not necessarily far off.** With the paper's $\alpha = 10^{-4}$ the missing cross term is small:
#   the error is about $10^{-3}$ here, and smaller still for smaller activations (the term scales with $\alpha a^2$). A float32
#   check with its usual $10^{-2}$ tolerance would let it through (section 1); float64 with a $10^{-6}$ tolerance cannot
#   miss it. The network would even train with it. Test a layer in the regime where every term matters
#   (here, a large $\alpha$) as well as at the paper's constants; `python -m nn.gradcheck` checks LRN both ways.
# * On a scatter plot a correct gradient sits on the diagonal; a systematically wrong one fans away from it.
# * The size of the error is a clue: about 1 for a permutation or a sign, smaller and growing with $\alpha$ for a
#   missing term.
#
# ### A false alarm: kinks
#
# Central differences assume $f$ is smooth between $x - \epsilon$ and $x + \epsilon$. ReLU has a kink at 0 and max-pooling one
# wherever two inputs tie; if an input lies within $\epsilon$ of a kink, the numeric derivative averages the two sides and the
# check "fails" although the backward is right:

# %%
x = rng.normal(size=(2, 5))
x[0, 0] = 3e-7                       # within eps = 1e-6 of ReLU's kink
print("ReLU, one input 3e-7 from the kink:", f"{check_module(nn.ReLU(), x).max_error:.1e}")
assert check_module(nn.ReLU(), x).max_error > 1e-3
x[0, 0] = 0.5
print("ReLU, inputs away from the kink:   ", f"{check_module(nn.ReLU(), x).max_error:.1e}")
assert check_module(nn.ReLU(), x).max_error < 1e-8

# %% [markdown]
# That is why `nn.gradcheck`'s own cases feed ReLU and max-pooling inputs whose values are spaced at least $10^{-3}$ apart and away
# from 0. With random normal inputs of a few dozen entries this almost never happens, but in a large network end to end it can:
# re-run with another seed before you start hunting for a bug that is not there.
#
# ## 6. Checking your own layer from the command line
#
# `python -m nn.gradcheck` with no arguments checks every layer of the library and prints a table
# (`python -m alexnet.gradcheck` prints the same table with a reduced-width AlexNet end to end as its last row):

# %%
import subprocess, tempfile, textwrap

repo_root = str(pathlib.Path.cwd().parent)
env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [repo_root, os.environ.get("PYTHONPATH")])))
run = subprocess.run([sys.executable, "-m", "nn.gradcheck", "--device", "cpu", "--no-alexnet"],
                     capture_output=True, text=True, env=env, cwd=repo_root)
print(run.stdout, run.stderr)
assert run.returncode == 0 and ", 0 failed" in run.stdout

# %% [markdown]
# To check a layer of your own, put a **factory** in an importable module: a function with no arguments returning either
# the module, or a `(module, input)` pair (or `(module, input, loss, labels)`). Then run
# `python -m nn.gradcheck --layer mymodule:factory` (add `--input-shape 2,3,8,8` if the factory returns only a module). The
# layer only has to follow the `nn.Module` convention: parameters are `nn.Parameter`s assigned as attributes, and `backward`
# **adds** into their `.grad`.
#
# Below, a per-channel affine layer $y_{nchw} = \gamma_c x_{nchw} + \beta_c$ (the learnable scale and shift that batch normalisation
# would add after AlexNet's time), with
#
# $$
# \frac{\partial L}{\partial x_{nchw}} = \gamma_c\, g_{nchw}, \qquad
# \frac{\partial L}{\partial \gamma_c} = \sum_{n,h,w} g_{nchw}\, x_{nchw}, \qquad
# \frac{\partial L}{\partial \beta_c} = \sum_{n,h,w} g_{nchw},
# $$
#
# and a second factory with a typical bug: the bias gradient summed over the spatial axes but not over the batch. We write the
# file to a temporary folder and run the command there.

# %%
layer_source = textwrap.dedent('''
    import numpy as np
    import nn

    class ChannelAffine(nn.Module):
        def __init__(self, channels, forget_batch_sum=False, seed=0):
            rng = np.random.default_rng(seed)
            self.gamma = nn.Parameter(rng.normal(1.0, 0.1, size=channels))
            self.beta = nn.Parameter(rng.normal(0.0, 0.1, size=channels))
            self.forget_batch_sum = forget_batch_sum
            self._input = None

        def forward(self, x):
            self._input = x
            return x * self.gamma.data[:, None, None] + self.beta.data[:, None, None]

        def backward(self, grad_out):
            x = self._input
            self.gamma.grad += (grad_out * x).sum(axis=(0, 2, 3))
            if self.forget_batch_sum:
                self.beta.grad += grad_out.sum(axis=(2, 3))[0]        # bug: only the first example
            else:
                self.beta.grad += grad_out.sum(axis=(0, 2, 3))
            return grad_out * self.gamma.data[:, None, None]

    def factory():
        return ChannelAffine(4), np.random.default_rng(1).normal(size=(3, 4, 5, 5))

    def broken_factory():
        return ChannelAffine(4, forget_batch_sum=True), np.random.default_rng(1).normal(size=(3, 4, 5, 5))
''')

with tempfile.TemporaryDirectory() as folder:
    pathlib.Path(folder, "mylayer.py").write_text(layer_source)
    for factory in ["mylayer:factory", "mylayer:broken_factory"]:
        command = [sys.executable, "-m", "nn.gradcheck", "--layer", factory, "--device", "cpu"]
        run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
        print("$ python -m nn.gradcheck --layer", factory, "--device cpu")
        print(run.stdout + run.stderr + f"(exit status {run.returncode})\n")

# %% [markdown]
# The correct layer passes; the broken one fails with exit status 1 (so the command can guard a test suite or a CI job).
# The command reports only the largest error over all tensors; to see *which* tensor is wrong, call `check_module` from
# Python, which lists the input and every parameter separately (here `beta` would stand out).

# %% [markdown]
# ## Exercise (graded): a layer of your own, checked
#
# A "channel shuffle" $y_{n,c} = x_{n,\pi(c)}$ for a fixed permutation $\pi$ (the trick ShuffleNet later used to
# mix the groups of a grouped convolution like §3.2's). Its forward pass is given; write its backward pass
# (hint: each input channel went to exactly one output channel), without changing `grad_out`. The grader
# (`graders/nb11.py`) compares it with the inverse permutation and runs `check_module` on it, for three permutations
# that are not their own inverse and inputs of two, three and four dimensions.

# %%
# EXERCISE: channel-shuffle
class ChannelShuffle(nn.Module):
    def __init__(self, permutation):
        self.permutation = np.asarray(permutation)

    def forward(self, x):
        return x[:, self.permutation]

    def backward(self, grad_out):
        raise NotImplementedError


# %%
from graders import grade, nb11
grade("channel-shuffle", nb11.channel_shuffle, ChannelShuffle)


# %% [markdown]
# ## Exercises
#
# 1. **The command line, and a check too weak.** Put your graded `ChannelShuffle` in a file with a `factory()`, as in
#    section 6, and check it with `python -m nn.gradcheck --layer`. Then break its backward by applying $\pi$ instead
#    of $\pi^{-1}$: the command catches it, but would the sum-of-outputs check of section 4 have? Explain why not (what
#    does a permutation do to a sum?), and which other layers of `nn` such a check could not test either.
# 2. **One-sided differences.** Use forward differences in `numeric_gradient` and find, from the V plot and then by
#    experiment, the best $\epsilon$ and the best error you can reach in float64. Why is $\sqrt{u} \approx 10^{-8}$ the answer?
# 3. **How small a bug can you see?** Scale the cross term of the LRN backward by $1 + \delta$ instead of dropping it, at the
#    paper's constants. What is the smallest $\delta$ that `check_module` flags in float64? And in float32, using the V plot
#    to pick $\epsilon$?
