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
# # 05 · Local response normalization (§3.3)
#
# ReLUs do not saturate, so nothing stops their outputs from growing large. §3.3 of the paper adds a layer after the
# ReLUs of conv1 and conv2 that makes neighbouring **kernel maps** compete: at every pixel, a unit's output is divided
# by a power of the summed squared activity of the units in $n$ "adjacent" maps at the same position. The authors call
# it a form of *lateral inhibition*, "inspired by the type found in real neurons, creating competition for big
# activities amongst neuron outputs computed using different kernels", and report that it lowers top-1 and top-5
# error by 1.4 % and 1.2 %. (Later networks dropped it; batch normalization took its place. It is still part of
# AlexNet, and a fine exercise in deriving a backward pass with a sum that couples neighbours.)
#
# In this notebook:
#
# 1. the formula, as a naive loop, compared with `nn.LocalResponseNorm`;
# 2. the backward pass, derived by hand and checked entry by entry;
# 3. the gradient check, including the cases where a bug could hide;
# 4. the **$\alpha / n$ convention** that differs between the paper and Caffe/PyTorch;
# 5. how strongly it normalizes, as a function of the neighbours' activity.

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
np.set_printoptions(linewidth=120, precision=4)
rng = np.random.default_rng(0)


# %% [markdown]
# ## 1. The formula
#
# Write $a^i_{x,y}$ for the output of kernel $i$ at position $(x, y)$ *after* the ReLU, and $N$ for the number of
# kernels in the layer (96 for conv1). The response-normalized activity is
#
# $$
# b^i_{x,y} \;=\; a^i_{x,y} \Big/ \Big(k + \alpha \sum_{j=\max(0,\, i - n/2)}^{\min(N-1,\, i + n/2)} \big(a^j_{x,y}\big)^2\Big)^{\beta},
# \qquad k = 2,\; n = 5,\; \alpha = 10^{-4},\; \beta = 0.75 .
# $$
#
# The sum runs over $n = 5$ maps centred on $i$ (itself and two on each side), clipped at the first and last map;
# "adjacent" just means adjacent in the arbitrary order of the kernels, which is fixed before training. Everything
# happens at one pixel: LRN mixes channels, never positions. In what follows we drop $(x, y)$ and write
# $S_i = \sum_{j \in \mathcal W(i)} a_j^2$ for the windowed sum and $s_i = k + \alpha S_i$, so that
# $b_i = a_i\, s_i^{-\beta}$.
#
# A literal loop over channels, as our reference:

# %%
def lrn_naive(a, n=5, alpha=1e-4, beta=0.75, k=2.0):
    '''The §3.3 formula, one channel at a time. a: (N_batch, C, H, W). For odd n.'''
    C = a.shape[1]
    b = np.empty_like(a)
    for i in range(C):
        lo, hi = max(0, i - n // 2), min(C - 1, i + n // 2)
        s = k + alpha * np.sum(a[:, lo:hi + 1] ** 2, axis=1)        # s_i at every (batch, x, y)
        b[:, i] = a[:, i] / s ** beta
    return b

a = np.maximum(rng.normal(scale=60.0, size=(2, 8, 3, 3)), 0)         # post-ReLU activities, some large
for params in [dict(), dict(n=5, alpha=1.0, beta=0.75, k=2.0), dict(n=3, alpha=0.01, beta=0.5, k=1.0)]:
    ref = lrn_naive(a, **params)
    layer = nn.LocalResponseNorm(size=params.get("n", 5), alpha=params.get("alpha", 1e-4),
                                 beta=params.get("beta", 0.75), k=params.get("k", 2.0))
    assert np.allclose(layer(a), ref)
    print(f"{str(layer):62} agrees with the loop; b/a ranges over [{(ref / np.where(a > 0, a, 1))[a > 0].min():.3f}, "
          f"{(ref / np.where(a > 0, a, 1))[a > 0].max():.3f}]")
    if not params:                                                      # paper constants: b/a never above k^-beta
        assert (ref / np.where(a > 0, a, 1))[a > 0].max() <= 2 ** -0.75 and round(2 ** -0.75, 2) == 0.59


# %% [markdown]
# `nn.LocalResponseNorm` does not loop over channels: `window_sum` in `nn/normalization.py` writes the squared input
# between zero channels (`n // 2` before, `(n - 1) // 2` after) and sums a strided view in which the offset within the
# window is an axis of its own, all windows in one reduction; the zeros clip the sum at the edges the same way. Notice the ratio $b/a$: even with no activity at all it is $k^{-\beta} = 2^{-0.75} \approx 0.59$,
# not 1; $k$ sets a floor under the denominator, and the layer is a constant rescaling until the activities get
# large (section 5).
#
# ### One pixel, five channels, by hand
#
# Take one pixel of a five-map layer whose ReLU outputs are $a = (10, 100, 80, 50, 200)$, paper constants. For each
# map, sum the squares over its window (itself and up to two neighbours on each side, clipped at the ends), then
# divide:
#
# | map $i$ | $a_i$ | window | $S_i$ | $s_i = 2 + 10^{-4} S_i$ | $s_i^{-0.75}$ | $b_i$ |
# |---|---|---|---|---|---|---|
# | 0 | 10 | 0–2 | $100 + 10^4 + 6400 = 16{,}500$ | 3.65 | 0.379 | 3.79 |
# | 1 | 100 | 0–3 | $16{,}500 + 2500 = 19{,}000$ | 3.90 | 0.360 | 36.0 |
# | 2 | 80 | 0–4 | $19{,}000 + 40{,}000 = 59{,}000$ | 7.90 | 0.212 | 17.0 |
# | 3 | 50 | 1–4 | $59{,}000 - 100 = 58{,}900$ | 7.89 | 0.212 | 10.6 |
# | 4 | 200 | 2–4 | $6400 + 2500 + 40{,}000 = 48{,}900$ | 6.89 | 0.235 | 47.0 |
#
# The big activity of map 4 suppresses its neighbours 2 and 3 to about a fifth of their input, while map 0, out of
# its reach, keeps 38 %: "competition for big activities amongst neuron outputs computed using different kernels".
# The layer agrees:

# %%
pixel = np.array([10., 100, 80, 50, 200]).reshape(1, 5, 1, 1)
b = nn.LocalResponseNorm().forward(pixel).ravel()
print("b =", b.round(2))
assert np.allclose(b.round(2), [3.79, 36.03, 16.98, 10.62, 47.03])

# %% [markdown]
# ### The window and the two GPUs
#
# In the paper each GPU holds half of the kernel maps and normalizes its own: the window of a map near the end of
# GPU 1's half does not reach into GPU 2's maps. `nn.LocalResponseNorm(groups=2)` does exactly that, by clipping the
# window at the edge of each half as it is clipped at the ends; `alexnet.AlexNet(groups=2)` uses it by default.
# `groups=1` lets the window run across all maps, as Caffe's single-GPU BVLC AlexNet (and the ONNX model zoo's copy of
# it) does: `AlexNet(lrn_groups=1)`, or `python -m alexnet train --lrn-across-towers`. Two copies of our pixel side by
# side, ten maps, as one layer with a window across all ten and as two towers:

# %%
two = np.concatenate([pixel, pixel[:, ::-1]], axis=1)          # maps 0-4 on "GPU 1", 5-9 on "GPU 2"
across, towers = nn.LocalResponseNorm(groups=1).forward(two).ravel(), nn.LocalResponseNorm(groups=2).forward(two).ravel()
print("across all ten maps:", across.round(2))
print("one window per GPU: ", towers.round(2))
print("maps that differ:   ", np.flatnonzero(~np.isclose(across, towers)).tolist())
assert np.allclose(towers[:5], b) and np.flatnonzero(~np.isclose(across, towers)).tolist() == [3, 4, 5, 6]

# %% [markdown]
# With one window per GPU each half gives exactly the five values computed by hand; across the boundary, maps 3 and 4
# of GPU 1 see GPU 2's first two maps (200 and 50 again) and are pushed down further, and the same the other way.
# Only the two maps on each side of the boundary differ, but for the paper's 96 and 256 maps that is the difference
# between the paper's network and Caffe's.
#
# ## 2. The backward pass
#
# Given $g_i = \partial L/\partial b_i$ (at one pixel; every pixel is independent), we need
# $\partial L / \partial a_j = \sum_i g_i\, \partial b_i / \partial a_j$. Input $a_j$ enters $b_i$ in two ways: as the
# numerator when $i = j$, and through the denominator whenever $j$ is in $i$'s window. With
# $\partial s_i/\partial a_j = 2\alpha a_j\,[j \in \mathcal W(i)]$ and the product rule,
#
# $$
# \frac{\partial b_i}{\partial a_j}
# = [i = j]\; s_i^{-\beta} \;-\; \beta\, a_i\, s_i^{-\beta - 1}\, \frac{\partial s_i}{\partial a_j}
# = [i = j]\; s_i^{-\beta} \;-\; 2\alpha\beta\, a_i a_j\, s_i^{-\beta-1}\, [j \in \mathcal W(i)] .
# $$
#
# Summing against $g_i$, and writing $a_i s_i^{-\beta - 1} = b_i / s_i$:
#
# $$
# \boxed{\;\frac{\partial L}{\partial a_j} \;=\; g_j\, s_j^{-\beta} \;-\; 2\alpha\beta\, a_j \!\!\sum_{i\,:\, j \in \mathcal W(i)}\!\! \frac{g_i\, b_i}{s_i}\;}
# $$
#
# The first term is what you would get if the denominator were a constant. The second is the coupling: making $a_j$
# bigger makes every neighbour's denominator bigger, and so pulls their outputs down. Its sum runs over the $i$ whose
# window *contains* $j$. For odd $n$ the window is symmetric, so that is again "the $n$ maps around $j$", and the
# backward pass can reuse the forward pass's windowed sum, applied to the array $g\,b/s$. (For even $n$ the window has
# one more map on one side than the other, and the backward sum uses the mirrored window; `nn` handles that, see its
# docstring.) Everything needed, $s$ and $b$, was computed in the forward pass, so the layer caches them.
#
# Here is that formula as an explicit double loop over $i$ and $j$, against the layer's `backward`:

# %%
def lrn_backward_naive(a, g, n=5, alpha=1e-4, beta=0.75, k=2.0):
    C = a.shape[1]
    window = lambda i: range(max(0, i - n // 2), min(C - 1, i + n // 2) + 1)
    s = np.stack([k + alpha * sum(a[:, j] ** 2 for j in window(i)) for i in range(C)], axis=1)
    b = a * s ** -beta
    da = g * s ** -beta                                            # the direct term
    for j in range(C):
        for i in range(C):
            if j in window(i):                                     # a_j is inside b_i's denominator
                da[:, j] -= 2 * alpha * beta * a[:, j] * g[:, i] * b[:, i] / s[:, i]
    return da

a = np.maximum(rng.normal(size=(2, 6, 2, 2)), 0)
g = rng.normal(size=a.shape)
layer = nn.LocalResponseNorm(size=5, alpha=1.0, beta=0.75, k=2.0)
layer(a)
da = layer.backward(g)
print("max |loop - nn.backward| =", np.abs(lrn_backward_naive(a, g, alpha=1.0) - da).max())
assert np.abs(lrn_backward_naive(a, g, alpha=1.0) - da).max() < 1e-12


# %% [markdown]
# ## 3. The gradient check, and where a bug could hide
#
# `check_module` compares `backward` with central differences of `forward` in float64 (notebook 11 explains it in
# depth). One subtlety matters here. With the paper's $\alpha = 10^{-4}$ and activities of order 1, the coupling
# term is about $10^{-4}$ of the direct term. A backward pass that *forgot* the coupling entirely would be wrong
# only in the fourth digit. To see how well the check catches that, here is such a broken layer:

# %%
class LRNWithoutCoupling(nn.LocalResponseNorm):
    '''A deliberately wrong backward pass: treats the denominator as a constant.'''
    def backward(self, grad_out):
        return grad_out * self._scale ** -self.beta

for name, alpha in [("paper alpha = 1e-4", 1e-4), ("alpha = 1", 1.0)]:
    err = check_module(LRNWithoutCoupling(5, alpha=alpha), rng.normal(size=(2, 4, 3, 3))).max_error
    print(f"broken backward, {name:18}: relative error {err:.1e}")
    assert (1e-5 < err < 1e-3) if alpha == 1e-4 else err > 0.1       # "about 1e-4", "glaring"

# %% [markdown]
# With the paper's constants the broken layer is off by only about $10^{-4}$: still above the checker's tolerance of
# $10^{-6}$, but by a margin that a looser tolerance or a float32 check would erase. With $\alpha = 1$ the coupling
# term is as big as the direct one and any mistake in it is glaring. So we check with $\alpha = 1$, and with **fewer
# channels than the window** ($N = 4 < n = 5$) so that every window is clipped at one edge or both, which is where
# off-by-one errors in the index arithmetic live. And an even size, where the window is lopsided:

# %%
cases = [
    ("paper constants, 8 channels", nn.LocalResponseNorm(), (2, 8, 3, 3)),
    ("alpha=1, 4 channels (clipped windows)", nn.LocalResponseNorm(5, alpha=1.0, beta=0.75, k=2.0), (2, 4, 3, 3)),
    ("alpha=1, 2 channels", nn.LocalResponseNorm(5, alpha=1.0, beta=0.75, k=2.0), (3, 2, 2, 2)),
    ("even size 4, alpha=1, k=1", nn.LocalResponseNorm(4, alpha=1.0, beta=0.75, k=1.0), (2, 6, 2, 2)),
]
for name, layer, shape in cases:
    result = check_module(layer, rng.normal(size=shape))
    print(f"--- {name}\n{result}\n")
    assert result.passed


# %% [markdown]
# (The inputs here are Gaussian, negative values included, although in AlexNet LRN only ever sees ReLU outputs. The
# formula is smooth for every real input, so there is no reason to restrict the check.)
#
# ## 4. The $\alpha/n$ convention: the paper versus Caffe and PyTorch
#
# The paper multiplies the **sum** of the squares by $\alpha$. Caffe's LRN layer and PyTorch's
# `torch.nn.LocalResponseNorm` multiply their **mean**, i.e. they use $\alpha/n$:
#
# $$
# b_i = a_i \Big/ \Big(k + \frac{\alpha}{n} \sum_{j \in \mathcal W(i)} a_j^2\Big)^{\beta} \qquad \text{(Caffe, PyTorch).}
# $$
#
# So the paper's $\alpha = 10^{-4}$ is written $\alpha = 5 \times 10^{-4}$ in their convention:
# `torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)`. (The widely copied Caffe AlexNet definition uses
# `alpha: 0.0001` *and* divides by $n$, so it normalizes five times more weakly than the paper; its `k` is 1 where
# the paper says 2, too.) `nn.LocalResponseNorm` follows the paper; pass `alpha_over_n=True` to give it an $\alpha$
# in the Caffe/PyTorch convention. Below, PyTorch's formula written out in NumPy, and the three ways of saying the
# same thing:

# %%
def lrn_pytorch_formula(a, size, alpha, beta, k):
    '''b = a / (k + alpha/n * windowed sum of squares)^beta, written out by hand.'''
    return a / (k + alpha / size * nn.normalization.window_sum(a * a, size // 2, (size - 1) // 2)) ** beta

a = np.maximum(rng.normal(scale=100.0, size=(2, 16, 4, 4)), 0)     # activities big enough for LRN to matter
paper = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
theirs = nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0, alpha_over_n=True)(a)
by_hand = lrn_pytorch_formula(a, 5, alpha=5e-4, beta=0.75, k=2.0)
print("paper alpha=1e-4  ==  alpha_over_n=True, alpha=5e-4 :", np.allclose(paper, theirs))
print("paper alpha=1e-4  ==  PyTorch formula,   alpha=5e-4 :", np.allclose(paper, by_hand))
print("layer stores alpha =", nn.LocalResponseNorm(5, alpha=5e-4, alpha_over_n=True).alpha)
assert np.allclose(paper, theirs) and np.allclose(paper, by_hand)

wrong = lrn_pytorch_formula(a, 5, alpha=1e-4, beta=0.75, k=2.0)    # copying 1e-4 into PyTorch's convention
active = a > 50
print(f"copying alpha=1e-4 into PyTorch's convention: outputs of active units (a > 50) are "
      f"{np.median(wrong[active] / paper[active]):.2f}x the paper's (median)")

# %% [markdown]
# ## 5. How strongly does it normalize?
#
# The factor that multiplies $a_i$ is $s_i^{-\beta} = (k + \alpha S_i)^{-\beta}$. With no activity nearby it is
# $k^{-\beta} \approx 0.59$; it starts to fall noticeably once $\alpha S_i$ is comparable to $k$, i.e. once the
# summed squares reach $k/\alpha = 20{,}000$: five units at about $\sqrt{20{,}000/5} \approx 63$ each. The left plot
# shows the factor against the activity of the four neighbours (unit $i$ itself held at 0, so only the neighbours
# count), for the paper's $\alpha$ and, for comparison, for the five-times-weaker Caffe/PyTorch mix-up of section 4.
# The right plot shows a unit's output $b_i$ against its own input $a_i$ while its neighbours sit at fixed levels.

# %%
k, alpha, beta = 2.0, 1e-4, 0.75
act = np.logspace(0, 3.3, 200)                                  # activity of each of the 4 neighbours
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6))
for al, label in [(alpha, r"paper: $\alpha=10^{-4}$"), (alpha / 5, r"$\alpha=10^{-4}$ in PyTorch's convention")]:
    ax0.plot(act, (k + al * 4 * act**2) ** -beta, label=label)
ax0.axhline(k ** -beta, color="grey", ls=":", lw=1)
ax0.set_xscale("log"); ax0.set_ylim(0, 0.65)
ax0.set_xlabel("activity $a$ of each of the 4 neighbours"); ax0.set_ylabel(r"factor $s_i^{-\beta}$ on $a_i$")
ax0.set_title("suppression by the neighbours", fontsize=10); ax0.legend(fontsize=9); ax0.grid(alpha=0.3)

own = np.linspace(0, 800, 400)
for neighbour in [0, 50, 100, 200]:
    b = own * (k + alpha * (own**2 + 4 * neighbour**2)) ** -beta
    ax1.plot(own, b, label=f"neighbours at {neighbour}")
ax1.set_xlabel("own activity $a_i$"); ax1.set_ylabel("output $b_i$")
ax1.set_title("a unit's response (paper constants)", fontsize=10); ax1.legend(fontsize=9); ax1.grid(alpha=0.3)
plt.tight_layout(); plt.show()

a_star = np.sqrt(k / (alpha * (2 * beta - 1)))
print(f"with silent neighbours, b_i is largest at a_i = sqrt(k / (alpha (2 beta - 1))) = {a_star:.0f}, "
      f"where b_i = {a_star * (k + alpha * a_star**2) ** -beta:.2f}")
assert round(a_star) == 200                                           # "beyond a_i = 200", below
assert k / alpha == 20_000 and round(np.sqrt(20_000 / 5)) == 63        # where the factor starts to fall (above)

# %% [markdown]
# Three things to take from the plots:
#
# * **Below activities of a few tens, LRN is just a constant factor** $k^{-\beta}$. How large are AlexNet's
#   activities? The inputs are raw pixel values with the mean subtracted (§2), so of order ±50 to ±100, and conv1's
#   11×11×3 kernels start with weights of standard deviation 0.01 (§5), which puts conv1's outputs at the start of
#   training around $0.01 \cdot \sqrt{363} \cdot 60 \approx 10$ (a rough estimate). So at first the layer does little; it
#   starts to compete once training has grown some units into the hundreds.
# * **Competition:** a unit with the same input produces much less when its neighbours are active (right plot).
#   Big activities in one map suppress the adjacent maps at the same pixel.
# * **Saturation of a unit by itself:** since $a_i$ is part of its own window, $b_i \approx a_i (\alpha a_i^2)^{-\beta}
#   \propto a_i^{1 - 2\beta}$ for large $a_i$. With $\beta = 0.75 > 1/2$ that *decreases*: beyond $a_i \approx 200$ a
#   bigger input gives a smaller output. The derivative formula of section 2 already contains this: its two terms
#   cancel at the peak.

# %% [markdown]
# ## Exercise (graded): LRN as a loop over channels, with the two towers
#
# Write the forward pass of §3.3 with one loop over the channels $i$: sum the squares of the maps from
# $i - \lfloor n/2 \rfloor$ to $i + \lfloor (n-1)/2 \rfloor$, clipped at the edges of the channel block that $i$ belongs to
# (with `groups=2` the $N$ maps form two blocks of $N/2$, one per GPU, and the window never crosses between
# them). The grader (`tutorials/graders/nb05.py`) compares with `nn.LocalResponseNorm` on inputs large enough for the
# normalization to matter, in six configurations: the paper's constants with `groups=1` and `groups=2`, other values
# of $n$, $k$, $\alpha$ and $\beta$, an even window ($n = 4$) inside two towers, towers narrower than the window
# (`groups=4` on 12 maps), and fewer maps than the window. It also checks that your function leaves its input unchanged.

# %%
# EXERCISE: lrn-loop
def lrn_loop(a, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    """a (N, C, H, W) -> b, the same shape."""
    raise NotImplementedError


# %%
from graders import grade, nb05
grade("lrn-loop", nb05.lrn_loop, lrn_loop)


# %% [markdown]
# ## Exercise (graded): the backward pass, with the two towers
#
# Now the backward pass of section 2, for the layer of the previous exercise: given the input $a$ and
# $g = \partial L/\partial b$, return $\partial L/\partial a$,
#
# $$ \frac{\partial L}{\partial a_j} = g_j\, s_j^{-\beta} - 2\alpha\beta\, a_j \!\!\sum_{i\,:\, j \in \mathcal W(i)}\!\! \frac{g_i\, b_i}{s_i} . $$
#
# Section 2's double loop over $i$ and $j$ is the definition; write it instead with one loop over the channels, as in
# `lrn_loop`: compute $s_i$ for every map, then, for each $j$, the sum over the $i$ whose window contains $j$. $b_i$'s
# window runs from $i - \lfloor n/2 \rfloor$ to $i + \lfloor (n-1)/2 \rfloor$, so $j \in \mathcal W(i)$ exactly when $i$
# runs from $j - \lfloor (n-1)/2 \rfloor$ to $j + \lfloor n/2 \rfloor$: the mirrored window, which differs from the
# forward one only for even $n$. Both are clipped at the edges of the tower that the map belongs to.
#
# The grader compares your gradient with `nn.LocalResponseNorm.backward` in seven configurations: the paper's
# constants, $\alpha = 1$ (where the coupling term is as large as the direct one, section 3), even windows, two and
# three towers, fewer maps than the window and negative inputs. It checks that your function leaves its inputs
# unchanged, and it gradient-checks it: `nn`'s forward pass with your backward pass, against central differences.

# %%
# EXERCISE: lrn-backward
def lrn_backward(a, grad_out, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    """a, grad_out (N, C, H, W) -> dL/da, the same shape."""
    raise NotImplementedError        # s_i per map; g s^-beta; minus 2 alpha beta a_j * (sum of g b / s over the mirrored window)


# %%
grade("lrn-backward", nb05.lrn_backward, lrn_backward)


# %% [markdown]
# ## Summary
#
# * LRN divides each post-ReLU unit by $(k + \alpha \cdot \text{sum of squares of the } n \text{ adjacent maps})^\beta$,
#   at every pixel; paper constants $k = 2, n = 5, \alpha = 10^{-4}, \beta = 0.75$ (§3.3), after conv1 and conv2 (§3.5).
# * Backward: $\partial L/\partial a_j = g_j s_j^{-\beta} - 2\alpha\beta\, a_j \sum_{i: j \in \mathcal W(i)} g_i b_i / s_i$;
#   the second sum is the forward window sum (mirrored for even $n$) applied to $g\,b/s$.
# * Gradient-check it with $\alpha = 1$ and fewer channels than the window, or a bug in the coupling term can hide.
# * The paper's $\alpha$ multiplies the sum; Caffe's and PyTorch's multiplies the mean: paper $10^{-4}$ = their
#   $5 \times 10^{-4}$ (`alpha_over_n=True`).
#
# ## Exercises
#
# 1. **The peak.** Derive $a^\ast = \sqrt{k / (\alpha (2\beta - 1))}$ from $\partial b_i / \partial a_i = 0$ with
#    silent neighbours, and confirm it with `nn.LocalResponseNorm.backward` (feed a one-hot `grad_out`). What
#    happens to the shape of the right-hand curve for $\beta \le 1/2$?
# 2. **The other even window.** For even $n$ the paper's "$i - n/2$ to $i + n/2$" is ambiguous; `nn` puts $n/2$ maps
#    before $i$ and $n/2 - 1$ after. Write the other choice ($n/2 - 1$ before, $n/2$ after) as a subclass that changes
#    `self.before` and `self.after`, run `check_module` on it, and explain why the backward pass needs no other change.
# 3. **Is it worth it?** Train the small network of notebook 04 twice, with and without an `nn.LocalResponseNorm`
#    after its first two ReLUs (paper constants), and compare the training curves. Then scale the input images by 100
#    and repeat. Why does the answer depend on the scale of the inputs (section 5), when batch normalization's would not?
