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
# # 07 · Dropout (§4.2)
#
# AlexNet has 60 million parameters and was trained on 1.2 million images, and §4 of the paper is frank
# about it: that is enough parameters to overfit badly. Besides data augmentation (§4.1), the
# authors use a then-new trick, **dropout**, in the first two fully connected layers (fc6 and fc7):
#
# > set to zero the output of each hidden neuron with probability 0.5. The neurons which are "dropped out"
# > in this way do not contribute to the forward pass and do not participate in back-propagation. [...]
# > At test time, we use all the neurons but multiply their outputs by 0.5.
#
# Every training example therefore sees a different random "thinned" network, and since all of them share
# weights, a neuron cannot rely on any particular other neuron being present: it has to learn features that
# are useful on their own. The paper reports that without dropout the network overfits substantially, and
# that dropout roughly doubles the number of iterations needed to converge.
#
# In this notebook we:
#
# 1. look at what `nn.Dropout` does in training and at test time, in the paper's bookkeeping
#    (`mode="paper"`) and in the "inverted" one every modern framework uses (`mode="inverted"`);
# 2. check that in both, the *expected* training output equals the test output;
# 3. derive the backward pass and run the gradient check;
# 4. show that a network trained with one bookkeeping is the network trained with the other, up to one
#    factor on the next layer's weights;
# 5. run a small, honest experiment on overfitting.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # our matrices are tiny: threads cost more than they save
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import nn
from nn.gradcheck import check_module

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 1. Training and test behaviour
#
# Write $p$ for the drop probability (0.5 in the paper) and $u_i \sim \mathcal U(0, 1)$ for one uniform random
# number per unit. A unit is kept when $u_i \ge p$, i.e. with probability $1 - p$. The two bookkeepings are
#
# | | training | test |
# |---|---|---|
# | paper (`mode="paper"`) | $y_i = [u_i \ge p]\, x_i$ | $y_i = (1 - p)\, x_i$ (the "multiply by 0.5") |
# | inverted (`mode="inverted"`, the default, as in PyTorch) | $y_i = \dfrac{[u_i \ge p]}{1 - p}\, x_i$ | $y_i = x_i$ |
#
# In both, training multiplies the input by a random **mask** $m$: $y = m \odot x$. The layer switches between the
# two columns with `.train()` / `.eval()`, like every `nn.Module`. Let us push a row of ones through it:

# %%
x = np.ones((1, 12), dtype=np.float32)
for mode in ["paper", "inverted"]:
    drop = nn.Dropout(p=0.5, mode=mode, rng=np.random.default_rng(0))
    print(drop)
    train_out, eval_out = drop.train()(x)[0], drop.eval()(x)[0]
    print("  train:", train_out)
    print("  eval: ", eval_out)
    assert set(train_out) == ({0, 1} if mode == "paper" else {0, 2}) and set(eval_out) == ({0.5} if mode == "paper" else {1})

# %% [markdown]
# Same random draw (same seed), same kept units; the only difference is *where* the factor 2 = $1/(1-p)$
# goes: the paper scales down at test time, inverted dropout scales up during training so that the test
# pass is a plain identity (nothing to remember, nothing to compute at deployment).
#
# ### What the masks look like
#
# fc6 has 4096 units and a batch has 128 examples. Below: a corner of one mask (white = kept), the values the
# mask takes in each mode, and the fraction of units kept in each of the 128 examples. Each unit is kept
# independently with probability 1/2, so that fraction is a $\text{Binomial}(4096, 0.5)/4096$ variable: very close
# to 0.5 every time (standard deviation $\sqrt{0.25/4096} \approx 0.008$), although *which* units are kept changes
# completely from one example to the next.

# %%
batch, units, p = 128, 4096, 0.5
ones = np.ones((batch, units), dtype=np.float32)
masks = {mode: nn.Dropout(p, mode=mode, rng=np.random.default_rng(1)).train()(ones) for mode in ["paper", "inverted"]}
kept_fraction = (masks["inverted"] > 0).mean(axis=1)

import _helpers
_helpers.plot_dropout_masks(masks, p)                   # the figure's code is in _helpers.py
std = np.sqrt(p * (1 - p) / units)
print(f"kept fraction: mean {kept_fraction.mean():.4f}, std {kept_fraction.std():.4f} (theory {std:.4f})")
assert round(std, 3) == 0.008 and abs(kept_fraction.std() - std) < 0.002 and abs(kept_fraction.mean() - 0.5) < 0.005

# %% [markdown]
# ## 2. Expected training output = test output
#
# Why these particular test-time factors? Because they make the test output the **average** of the training
# output over all masks. With $\Pr[m_i \ne 0] = 1 - p$:
#
# $$
# \text{paper:}\quad \mathbb E[y_i] = (1-p)\,x_i, \qquad\qquad
# \text{inverted:}\quad \mathbb E[y_i] = (1-p)\cdot\frac{x_i}{1-p} = x_i ,
# $$
#
# which is exactly the test column of the table. The next layer is linear, $z = W y + b$, so it too receives on
# average at training time what it receives at test time: $\mathbb E[z] = W\,\mathbb E[y] + b$. (After the
# following ReLU this is no longer an exact average over the $2^{4096}$ thinned networks; the paper calls the
# test pass "a reasonable approximation to taking the geometric mean of the predictive distributions produced by
# the exponentially-many dropout networks".)
#
# Let us check it by Monte Carlo: average the training output over $T$ masks and compare with the test output.
# The error of an average of $T$ independent draws shrinks like $1/\sqrt T$.

# %%
rng = np.random.default_rng(2)
h = np.maximum(rng.normal(size=(1, 1000)), 0).astype(np.float64)     # a post-ReLU activation vector
T, curves = 4096, {}
sizes = np.unique(np.logspace(0, np.log10(T), 25).astype(int))
fig, ax = plt.subplots(figsize=(6, 3.8))
for mode in ["paper", "inverted"]:
    drop = nn.Dropout(0.5, mode=mode, rng=np.random.default_rng(3))
    test_out = drop.eval()(h)
    train_outs = drop.train()(np.repeat(h, T, axis=0))                 # T independent masks at once
    running_mean = np.cumsum(train_outs, axis=0) / np.arange(1, T + 1)[:, None]
    errors = [np.linalg.norm(running_mean[t - 1] - test_out) / np.linalg.norm(test_out) for t in sizes]
    ax.loglog(sizes, errors, "o-", ms=3, label=mode)
    curves[mode] = errors
    print(f"{mode:>8}: relative distance between the mean of {T} training outputs and the test output: {errors[-1]:.4f}")
ax.loglog(sizes, 1 / np.sqrt(sizes), "k--", label=r"$1/\sqrt{T}$")
ax.set(xlabel="number of masks averaged, T", ylabel="relative error vs test output",
       title="Mean training output -> test output")
ax.legend(); plt.tight_layout(); plt.show()
assert np.allclose(curves["paper"], curves["inverted"]) and curves["paper"][-1] < 2 / np.sqrt(T)   # identical, ~1/sqrt(T)

# %% [markdown]
# Both modes converge to their test output at the $1/\sqrt T$ rate, and the two curves are identical: with
# the same random numbers, the inverted layer's outputs are just the paper layer's outputs times 2, and so are
# its test outputs.
#
# ## 3. The backward pass
#
# In training the layer is $y = m \odot x$ with $m$ fixed once the mask is drawn, so each output depends on one
# input only:
#
# $$
# \frac{\partial y_i}{\partial x_j} = m_i\,[i = j]
# \qquad\Longrightarrow\qquad
# \frac{\partial L}{\partial x_i} = \sum_j \frac{\partial L}{\partial y_j}\frac{\partial y_j}{\partial x_i} = m_i\,\frac{\partial L}{\partial y_i}.
# $$
#
# A dropped unit ($m_i = 0$) receives no gradient, which is the paper's "do not participate in
# back-propagation". At test time $m$ is the constant $1 - p$ (paper) or $1$ (inverted), and the same formula
# holds. That is the whole of `nn.Dropout.backward`: `grad_out * mask`, with the mask cached by `forward`.
#
# The backward pass must use the **same mask** as the forward pass it follows. The gradient checker knows this:
# it resets the layer's random generator before every forward evaluation, so all the perturbed forward
# passes see one mask.

# %%
rng = np.random.default_rng(4)
for mode in ["inverted", "paper"]:
    drop = nn.Dropout(0.5, mode=mode, rng=np.random.default_rng(5))
    print(f"Dropout(mode={mode!r}) in training mode")
    print(check_module(drop, rng.normal(size=(4, 10))), end="\n\n")
print("Dropout(mode='paper') in eval mode (y = 0.5 x)")
print(check_module(nn.Dropout(0.5, mode="paper").eval(), rng.normal(size=(4, 10))))

drop = nn.Dropout(0.5, rng=np.random.default_rng(6))
out = drop(np.ones((1, 10)))
print("\nforward of ones:   ", out[0])
back = drop.backward(np.ones((1, 10)))
print("backward of ones:  ", back[0], " (dropped units get exactly zero)")
assert np.array_equal(back, out) and (back[out == 0] == 0).all()

# %% [markdown]
# ## 4. Two bookkeepings, one network
#
# Take a layer with dropout followed by a linear layer, $z = W\,(m \odot h) + b$. In the paper's bookkeeping $m_i \in
# \{0, 1\}$; in the inverted one $m_i \in \{0, 1/(1-p)\}$. So
#
# $$
# W_\text{paper}\,(m_\text{paper} \odot h) = W_\text{inv}\,(m_\text{inv} \odot h)
# \quad\text{for every mask}\quad\Longleftrightarrow\quad
# W_\text{paper} = \frac{W_\text{inv}}{1 - p},
# $$
#
# and at test time $W_\text{paper}\,(1-p)\,h = W_\text{inv}\,h$ as well. A network trained with one bookkeeping is a
# network of the other kind once the weights of the layer **after** each dropout are multiplied by $1/(1-p)$ (or
# $1 - p$ the other way); nothing else changes.
#
# Does training keep them in step? The gradients that flow *backwards* into $h$ are identical
# ($m_\text{paper} \odot W_\text{paper}^\top g = m_\text{inv} \odot W_\text{inv}^\top g$), so every earlier layer gets the same
# update. The next layer's own gradient is $g\,(m \odot h)^\top$, which is $(1 - p)$ times **smaller** in the paper
# network, while its weight is $1/(1-p)$ times **larger**. To keep $W_\text{paper} = W_\text{inv}/(1-p)$ after every SGD step,
# that one layer needs its learning rate multiplied by $1/(1-p)^2$ and its weight decay by $(1-p)^2$ (the paper's rule
# of §5 has $\varepsilon$ and $\varepsilon\cdot$decay in the velocity, see notebook 08). Conversely, a paper-style network trained
# with the *same* hyperparameters behaves like an inverted one whose next layer has a learning rate $(1-p)^2 = 1/4$ as
# large (and, relative to that, a weight decay 4 times as strong).
#
# Let us verify all of this exactly: two small MLPs, started from corresponding weights, trained for 300 SGD steps
# with momentum and weight decay on the same batches and **the same masks** (the two dropout layers get generators
# with the same seed).

# %%
p, lr, wd = 0.5, 0.05, 5e-4
rng = np.random.default_rng(7)
X, Y = rng.normal(size=(512, 20)), rng.integers(0, 3, 512)

def mlp(mode):
    r = np.random.default_rng(0)                       # same initial weights for both
    return nn.Sequential(nn.Linear(20, 64, rng=r), nn.ReLU(),
                         nn.Dropout(p, mode=mode, rng=np.random.default_rng(1)),   # same masks for both
                         nn.Linear(64, 3, rng=r)).astype(np.float64)

inv, pap = mlp("inverted"), mlp("paper")
pap[3].weight.data /= 1 - p                            # the map between the two bookkeepings

opt_inv = [nn.SGD(inv.parameters(), lr=lr, momentum=0.9, weight_decay=wd)]
rest = [param for param in pap.parameters() if param is not pap[3].weight]
opt_pap = [nn.SGD(rest, lr=lr, momentum=0.9, weight_decay=wd),
           nn.SGD([pap[3].weight], lr=lr / (1 - p) ** 2, momentum=0.9, weight_decay=wd * (1 - p) ** 2)]

loss_fn = nn.SoftmaxCrossEntropyLoss()
losses = {"inverted": [], "paper": []}
for step in range(300):
    idx = np.random.default_rng(step).choice(len(X), 32, replace=False)
    for name, net, opts in [("inverted", inv, opt_inv), ("paper", pap, opt_pap)]:
        net.train()
        losses[name].append(loss_fn.forward(net(X[idx]), Y[idx]))
        for opt in opts:
            opt.zero_grad()
        net.backward(loss_fn.backward())
        for opt in opts:
            opt.step()

inv.eval(); pap.eval()
print("largest difference in training loss over 300 steps:", np.max(np.abs(np.subtract(losses["inverted"], losses["paper"]))))
print("fc after dropout:  max |W_paper * (1-p) - W_inv| =", np.abs(pap[3].weight.data * (1 - p) - inv[3].weight.data).max())
print("fc before dropout: max |W_paper - W_inv|         =", np.abs(pap[0].weight.data - inv[0].weight.data).max())
print("test-time outputs: max |z_paper - z_inv|         =", np.abs(pap(X) - inv(X)).max())
assert np.max(np.abs(np.subtract(losses["inverted"], losses["paper"]))) == 0 and np.abs(pap(X) - inv(X)).max() == 0
assert np.abs(pap[3].weight.data * (1 - p) - inv[3].weight.data).max() == 0            # "Zero", below

# %% [markdown]
# Zero (with $p = 0.5$ the factors are powers of two, so even the rounding is identical; try `p = 0.3` and you
# will see differences of order $10^{-16}$ to $10^{-15}$, plain float64 rounding): the two trained networks compute the same function, and their
# weights differ only by the factor $1/(1-p) = 2$ on the layer after dropout. Choosing between "multiply by 0.5
# at test time" and inverted dropout is bookkeeping, not a modelling decision. Inverted dropout wins in practice
# because the test-time network is the plain network, and changing $p$ does not change the scale of the weights.
#
# ## 5. Does dropout reduce overfitting? A small experiment
#
# A toy version of the paper's situation: far more parameters than examples. The data are 30-dimensional Gaussian
# vectors whose label depends on five of the coordinates, each training label flipped with probability 0.1 (38 of the
# 300 here: noise a network can memorise). We train an MLP $30 \to 256 \to 256 \to 2$ (74,242 parameters) on only 300
# examples, with and without dropout ($p = 0.5$ after both hidden layers, as in fc6 and fc7), with the same
# initial weights, batches and SGD settings, and evaluate on 4000 fresh examples (in eval mode, of course).

# %%
rng = np.random.default_rng(0)
def make_data(n):
    x = rng.normal(size=(n, 30)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) + 0.5 * np.sin(3 * x[:, 4]) > 0).astype(np.int64)
    return x, y
x_train, y_train = make_data(300)
flip = rng.random(300) < 0.1
y_train = np.where(flip, 1 - y_train, y_train)            # label noise, only in the training set
x_test, y_test = make_data(4000)

def make_net(p, seed=1):
    r = np.random.default_rng(seed)
    drop = lambda k: [nn.Dropout(p, rng=np.random.default_rng(seed + k))] if p else []
    return nn.Sequential(nn.Linear(30, 256, rng=r), nn.ReLU(), *drop(1),
                         nn.Linear(256, 256, rng=r), nn.ReLU(), *drop(2),
                         nn.Linear(256, 2, rng=r))

def evaluate(net, x, y):
    net.eval()
    logits = net(x)
    return loss_fn.forward(logits, y), float((logits.argmax(axis=1) == y).mean())

history = {}
for p in [0.0, 0.5]:
    net = make_net(p)
    opt = nn.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=0)
    rows = []
    for step in range(1, 1501):
        idx = np.random.default_rng(step).permutation(300)[:32]
        net.train()
        loss_fn.forward(net(x_train[idx]), y_train[idx])
        opt.zero_grad(); net.backward(loss_fn.backward()); opt.step()
        if step % 50 == 0:
            rows.append((step, *evaluate(net, x_train, y_train), *evaluate(net, x_test, y_test)))
    history[p] = np.array(rows)
    _, tr_loss, tr_acc, te_loss, te_acc = rows[-1]
    print(f"dropout p={p}: train loss {tr_loss:.3f} acc {tr_acc:.3f} | test loss {te_loss:.3f} acc {te_acc:.3f}")

none, drop = history[0.0], history[0.5]
print(f"{make_net(0.0).num_parameters():,} parameters; {flip.mean():.0%} of the training labels flipped")
fit = {p: int(h[np.argmax(h[:, 2] == 1.0), 0]) for p, h in history.items()}       # first step at 100 % training accuracy
loss_01 = {p: int(h[np.argmax(h[:, 1] < 0.1), 0]) for p, h in history.items()}    # first step with training loss < 0.1
print(f"first step with 100 % training accuracy: {fit}; with training loss below 0.1: {loss_01}")
print(f"test loss, lowest then final: no dropout {none[:, 3].min():.2f} -> {none[-1, 3]:.2f}, "
      f"dropout {drop[:, 3].min():.2f} -> {drop[-1, 3]:.2f}")
# the numbers quoted in the text below
assert make_net(0.0).num_parameters() == 74_242 and flip.sum() == 38 and none[-1, 2] == drop[-1, 2] == 1.0
assert np.allclose([none[:, 3].min(), none[-1, 3], drop[:, 3].min(), drop[-1, 3]], [0.47, 0.81, 0.42, 0.53], atol=0.006)
assert fit == {0.0: 150, 0.5: 750} and abs(none[-1, 4] - drop[-1, 4]) < 0.02

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for p, color in [(0.0, "C3"), (0.5, "C0")]:
    h = history[p]
    label = "no dropout" if p == 0 else f"dropout p={p}"
    axes[0].plot(h[:, 0], h[:, 1], "--", color=color, label=f"{label}, train")
    axes[0].plot(h[:, 0], h[:, 3], "-", color=color, label=f"{label}, test")
    axes[1].plot(h[:, 0], h[:, 2], "--", color=color, label=f"{label}, train")
    axes[1].plot(h[:, 0], h[:, 4], "-", color=color, label=f"{label}, test")
axes[0].set(xlabel="SGD step", ylabel="cross-entropy", title="loss", yscale="log")
axes[1].set(xlabel="SGD step", ylabel="accuracy", title="accuracy")
axes[1].axhline(1 - flip.mean(), color="gray", lw=0.8)   # the share of training labels that are right
axes[0].legend(fontsize=9); plt.tight_layout(); plt.show()

# %% [markdown]
# What to read in these curves (they are deterministic: same seeds, same numbers each run):
#
# * **Without dropout** the network memorises the training set, flipped labels included (training accuracy 100 %,
#   although 38 of those labels are wrong), its training loss heads to zero, and its **test loss climbs**, from 0.47
#   at its lowest to 0.81: it becomes confidently wrong on the test examples it misclassifies. That rising test loss
#   is overfitting.
# * **With dropout** the test loss stays lower and rises far more slowly (0.42 at its lowest, 0.53 at the end), even
#   though this network too ends up fitting all 300 training points.
# * **Test accuracy** barely moves (about one percentage point, within what another seed could change). Be honest
#   about that: on a problem this small the effect of dropout shows up mostly in the loss (calibration), not in the
#   error rate. In the paper's regime (a 60-million-parameter network, fc layers holding most of them) the authors saw
#   "substantial overfitting" without it.
# * The dropout network fits its training set five times more slowly (100 % training accuracy at step 750 against
#   150; compare the dashed curves): the paper's remark that dropout "roughly doubles the number of iterations
#   required to converge", here more than doubled.

# %% [markdown]
# ## Exercise (graded): inverted dropout
#
# Write inverted dropout as a Module: in training, draw a mask that keeps each unit with probability $1 - p$
# (`self.rng.random(x.shape) >= self.p`), multiply by the mask and divide by $1 - p$; at test time (`self.training`
# is False) return the input unchanged. The backward pass is the derivative of the last forward: the same mask and
# factor after a training forward, the identity after a test-time one. The grader (`graders/nb07.py`) tries
# $p = 0$, 0.2, 0.5 and 0.9, and checks that each example gets its own mask, that the fraction dropped is $p$, that
# kept units are $x/(1-p)$, that every forward draws a fresh mask, the backward pass in both modes, and a gradient
# check.

# %%
# EXERCISE: dropout
class MyDropout(nn.Module):
    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = p, rng if rng is not None else np.random.default_rng()

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError


# %%
from graders import grade, nb07
grade("dropout", nb07.dropout, MyDropout)


# %% [markdown]
# ## Exercises
#
# 1. **Where and how much.** Rerun the experiment with $p \in \{0.2, 0.5, 0.7\}$, and with dropout on one hidden layer only.
#    Plot the final test loss against $p$. Is 0.5 special here?
# 2. **Test-time averaging.** §4.2 calls the test pass an approximation to averaging the exponentially many thinned networks.
#    Keep the trained dropout network in `.train()` mode, average its softmax (`nn.softmax`) over 100 forward passes on the
#    test set, and compare the resulting accuracy and loss with the single `.eval()` pass.
# 3. **Converting a checkpoint.** Train a network with `mode="inverted"`, then build the same architecture with
#    `mode="paper"`, load the state dict, and fix the weights so that its `.eval()` outputs match to $10^{-12}$. Which
#    parameters did you have to change, and by what factor? What would change with `p=0.3`?
