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
# # 08 · Softmax, cross-entropy, and SGD with momentum and weight decay (§3.5, §5)
#
# The last layer of AlexNet, fc8, produces 1000 numbers per image, the **logits** $z$. §3.5: the network
# "maximizes the multinomial logistic regression objective", i.e. it turns the logits into probabilities with a
# softmax and minimises the cross-entropy with the true label. §5 then says exactly how the weights move:
# stochastic gradient descent with batches of 128, momentum 0.9 and weight decay 0.0005, with an update rule
# written out in full, and a learning rate divided by 10 whenever the validation error stopped improving.
#
# In this notebook:
#
# 1. softmax and cross-entropy, and why every implementation subtracts the maximum first;
# 2. the gradient $\partial L / \partial z = (p - \text{onehot}(t)) / N$, derived and gradient-checked;
# 3. the paper's SGD update, and how it differs from PyTorch's `torch.optim.SGD` when the learning rate changes
#    (simulated in NumPy on a small quadratic);
# 4. `nn.ReduceLROnPlateau`, the automated version of the paper's hand-tuned schedule.

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
# ## 1. Softmax and cross-entropy
#
# For one example with logits $z \in \mathbb R^K$ and true class $t$:
#
# $$
# p_k = \operatorname{softmax}(z)_k = \frac{e^{z_k}}{\sum_j e^{z_j}},
# \qquad
# \ell(z, t) = -\log p_t = \log \sum_j e^{z_j} - z_t .
# $$
#
# The loss of a batch of $N$ examples is the **mean** $L = \frac1N \sum_n \ell(z_n, t_n)$; that mean is the
# $\langle \cdot \rangle_{D_i}$ ("the average over the $i$-th batch") in the paper's update rule.
#
# ### Numerical stability: subtract the maximum
#
# Softmax does not change if the same constant $c$ is added to every logit: $e^{z_k - c} / \sum_j e^{z_j - c} =
# e^{z_k}/\sum_j e^{z_j}$. A naive implementation, though, evaluates $e^{z_k}$ itself, which overflows float32 as soon
# as $z_k > 88.7$ ($e^{88.7} \approx 3.4 \times 10^{38}$, the largest float32) and float64 above 709. Logits that large
# are not exotic: a network whose learning rate is a bit too high produces them within a few steps. With $c = \max_j z_j$
# the largest exponent is $e^0 = 1$: nothing overflows, and at least one term of the sum is 1, so nothing divides by
# zero either.

# %%
def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)

z = np.array([[1.0, 2.0, 3.0],
              [1000.0, 1001.0, 1002.0],        # the same row, shifted by 999
              [-1000.0, -999.0, -998.0]], dtype=np.float32)
with np.errstate(all="ignore"):
    print("naive:\n", naive_softmax(z))
    assert np.isnan(naive_softmax(z)[1:]).all()
    assert np.isfinite(np.exp(np.float32(88.7))) and np.isinf(np.exp(np.float32(88.8))) and np.isinf(np.exp(710.0))
print("nn.softmax (subtracts the row maximum):\n", nn.softmax(z))
assert np.allclose(nn.softmax(z), nn.softmax(z)[:1]) and round(float(np.finfo(np.float32).max) / 1e38, 1) == 3.4

# %% [markdown]
# The same care is needed for the loss. Computing $-\log p_t$ from an already rounded $p_t$ fails when $p_t$
# underflows to 0 (a confidently wrong prediction): $-\log 0 = \infty$. `nn.SoftmaxCrossEntropyLoss` never forms $p_t$
# for the loss; it uses the shifted **log-sum-exp** form, $\ell = \log\sum_j e^{z_j - c} - (z_t - c)$, which is exact.

# %%
z = np.array([[0.0, 800.0]])        # the network is very sure of class 1 ...
t = np.array([0])                   # ... and the answer is class 0
with np.errstate(all="ignore"):
    print("-log(softmax) naive:     ", -np.log(naive_softmax(z)[0, 0]))
    print("-log(nn.softmax):          ", -np.log(nn.softmax(z)[0, 0]), "(p_t underflows to 0)")
print("nn.SoftmaxCrossEntropyLoss:", nn.SoftmaxCrossEntropyLoss().forward(z, t), "(exact: 800 + log(1 + e^-800))")
assert nn.SoftmaxCrossEntropyLoss().forward(z, t) == 800.0

# %% [markdown]
# ## 2. The gradient: $\partial L/\partial z = (p - \text{onehot}(t))/N$
#
# Differentiate $\ell = \log \sum_j e^{z_j} - z_t$ with respect to $z_k$. The first term gives
#
# $$
# \frac{\partial}{\partial z_k} \log \sum_j e^{z_j} = \frac{e^{z_k}}{\sum_j e^{z_j}} = p_k ,
# $$
#
# and the second gives $-[k = t]$. So $\partial \ell / \partial z_k = p_k - [k = t]$: the predicted probabilities minus
# the one-hot label. With the batch mean, each example's gradient is divided by $N$:
#
# $$
# \frac{\partial L}{\partial z_{nk}} = \frac{1}{N}\big(p_{nk} - [k = t_n]\big).
# $$
#
# A few things worth noticing. Every entry lies in $[-1, 1]/N$, however wrong the prediction is (no exploding
# gradient from the loss itself). The correct logit is pushed up by $1 - p_t$, every other logit is pushed down by its own
# probability, and the gradient of each row sums to zero (adding a constant to all logits changes nothing). Softmax
# and cross-entropy are fused in one layer precisely because this combined gradient is so simple; the Jacobian of the
# softmax alone is a dense $K \times K$ matrix.
#
# `nn.SoftmaxCrossEntropyLoss.backward()` returns exactly this. Let us compare it with the formula, then
# gradient-check it. `check_module` accepts a loss: we give it `nn.Flatten()` as the module, which is the identity on a
# 2-D array, so the only thing being differentiated is the loss.

# %%
rng = np.random.default_rng(0)
N, K = 5, 4
logits, labels = rng.normal(size=(N, K)), rng.integers(0, K, N)
loss_fn = nn.SoftmaxCrossEntropyLoss()
print("loss:", loss_fn.forward(logits, labels))
by_formula = (nn.softmax(logits) - np.eye(K)[labels]) / N
print("max |backward() - (p - onehot)/N| =", np.abs(loss_fn.backward() - by_formula).max())
print("row sums of the gradient:", loss_fn.backward().sum(axis=1).round(17))
assert np.abs(loss_fn.backward() - by_formula).max() < 1e-15 and np.abs(loss_fn.backward()).max() <= 1 / N
assert np.allclose(loss_fn.backward().sum(axis=1), 0, atol=1e-15)

print("\nGradient check of the loss alone (identity module + loss):")
print(check_module(nn.Flatten(), logits, loss=nn.SoftmaxCrossEntropyLoss(), labels=labels))
print("\nGradient check of a linear layer followed by the loss (the fc8 + softmax of AlexNet, in small):")
print(check_module(nn.Linear(6, K, rng=rng), rng.normal(size=(N, 6)), loss=nn.SoftmaxCrossEntropyLoss(), labels=labels))

# %% [markdown]
# ## 3. The paper's SGD update rule
#
# §5 writes the update for every weight $w$ as
#
# $$
# v_{i+1} = 0.9\, v_i \;-\; 0.0005\,\varepsilon\, w_i \;-\; \varepsilon \Big\langle \frac{\partial L}{\partial w}\Big|_{w_i} \Big\rangle_{D_i},
# \qquad
# w_{i+1} = w_i + v_{i+1},
# $$
#
# with $\varepsilon$ the learning rate. Three ingredients: the gradient step $-\varepsilon g$; **weight decay**
# $-\lambda\varepsilon w$ with $\lambda = 0.0005$, which is the gradient step of an extra $\frac{\lambda}{2}\lVert w\rVert^2$ in the
# loss (the paper notes it is "not merely a regularizer: it reduces the model's training error"); and **momentum**
# 0.9, which keeps 90 % of the previous step. Note that $v$ is a *step* (in units of $w$) with $\varepsilon$ already inside
# it. `nn.SGD` implements exactly this, applying weight decay to every parameter it is given (the paper names no
# exception for biases). One step by hand:

# %%
w = nn.Parameter(np.array([1.0, -2.0]))
opt = nn.SGD([w], lr=0.01, momentum=0.9, weight_decay=5e-4)
v = np.zeros(2)
for step in range(3):
    g = np.array([0.5, 0.25]) * (step + 1)          # some gradient
    w_before = w.data.copy()
    w.grad[...] = g
    opt.step()
    v = 0.9 * v - 5e-4 * 0.01 * w_before - 0.01 * g  # the paper's rule, written out
    print(f"step {step}: nn.SGD w = {w.data},  by hand w = {w_before + v},  velocity {opt.velocities[0]}")
    assert np.allclose(w.data, w_before + v, rtol=0, atol=1e-15) and np.allclose(opt.velocities[0], v, rtol=0, atol=1e-15)


# %% [markdown]
# ### PyTorch's SGD is written differently
#
# `torch.optim.SGD(params, lr, momentum, weight_decay)` (with its defaults `dampening=0`, `nesterov=False`) does, per
# its documentation,
#
# $$
# b_{i+1} = \mu\, b_i + \big(g_i + \lambda w_i\big),
# \qquad
# w_{i+1} = w_i - \varepsilon_i\, b_{i+1}.
# $$
#
# (PyTorch's documentation itself notes that this "subtly differs from Sutskever et al.", the same Sutskever who
# is the paper's second author.) Its momentum buffer $b$ accumulates *gradients*; the learning rate multiplies the whole buffer at the moment of the
# step. In the paper's rule, $\varepsilon$ multiplies each gradient when it *enters* the velocity. While $\varepsilon$ is constant
# the two are the same algorithm: by induction, if $v_i = -\varepsilon b_i$ then
#
# $$
# v_{i+1} = \mu v_i - \varepsilon(g_i + \lambda w_i) = -\varepsilon\big(\mu b_i + g_i + \lambda w_i\big) = -\varepsilon\, b_{i+1},
# $$
#
# and both take the step $-\varepsilon b_{i+1}$. When the learning rate is divided by 10, though, PyTorch's next step is
# $\varepsilon/10$ times the **whole** buffer, built up at the old rate: the momentum is cut by 10 at once. The paper's velocity
# still holds steps taken at the old rate; they fade by a factor 0.9 per step, so the old rate keeps acting for
# roughly $1/(1-0.9) = 10$ iterations, or longer when the dynamics oscillate.
#
# The notebooks in this project must not depend on PyTorch, so here is its rule emulated in a few lines of NumPy, next
# to `nn.SGD`, on a small ill-conditioned quadratic $f(w) = \frac12 w^\top A w$ with $A = \operatorname{diag}(1, 12)$
# (a narrow valley, where momentum matters). We run 120 steps at $\varepsilon = 0.05$ and divide it by 10 at step 40.

# %%
class TorchStyleSGD:
    # torch.optim.SGD's update (dampening=0, nesterov=False), emulated in NumPy.
    def __init__(self, w, lr, momentum=0.9, weight_decay=5e-4):
        self.w, self.lr, self.momentum, self.weight_decay = w, lr, momentum, weight_decay
        self.buf = np.zeros_like(w)

    def step(self, grad):
        self.buf = self.momentum * self.buf + (grad + self.weight_decay * self.w)
        self.w -= self.lr * self.buf

A = np.diag([1.0, 12.0])
w0 = np.array([-4.0, 1.5])
lr0, drop_at, steps = 0.05, 40, 120

paper_w = nn.Parameter(w0.copy())
paper = nn.SGD([paper_w], lr=lr0, momentum=0.9, weight_decay=5e-4)
torch_like = TorchStyleSGD(w0.copy(), lr=lr0)
path = {"paper (nn.SGD)": [w0.copy()], "PyTorch rule": [w0.copy()]}
for i in range(steps):
    if i == drop_at:                       # divide the learning rate by 10
        paper.lr /= 10
        torch_like.lr /= 10
    paper_w.grad[...] = A @ paper_w.data   # the gradient of f
    paper.step()
    torch_like.step(A @ torch_like.w)
    path["paper (nn.SGD)"].append(paper_w.data.copy())
    path["PyTorch rule"].append(torch_like.w.copy())
path = {name: np.array(points) for name, points in path.items()}
gap = np.linalg.norm(path["paper (nn.SGD)"] - path["PyTorch rule"], axis=1)
print(f"largest distance between the two iterates before the drop: {gap[:drop_at + 1].max():.1e}")
print(f"largest distance after the drop:                          {gap[drop_at + 1:].max():.1e}")
f_paper = 0.5 * np.einsum("ni,ij,nj->n", path["paper (nn.SGD)"], A, path["paper (nn.SGD)"])
step_len = {name: np.linalg.norm(np.diff(points, axis=0), axis=1) for name, points in path.items()}
print(f"step length just before / just after the drop: PyTorch rule {step_len['PyTorch rule'][drop_at - 1]:.3f} / "
      f"{step_len['PyTorch rule'][drop_at]:.4f}, paper {step_len['paper (nn.SGD)'][drop_at - 1]:.3f} / "
      f"{step_len['paper (nn.SGD)'][drop_at]:.3f}")
assert gap[:drop_at + 1].max() < 1e-12 and gap[drop_at + 1:].max() > 1e-2          # same iterates, then not
assert (np.diff(f_paper[drop_at:drop_at + 10]) > 0).any()                           # f rises after the drop
ratio = step_len["PyTorch rule"][drop_at] / step_len["PyTorch rule"][drop_at - 1]
assert (round(step_len["PyTorch rule"][drop_at - 1], 3), round(step_len["PyTorch rule"][drop_at], 4)) == (0.158, 0.0137)
assert 8 < 1 / ratio < 15 and step_len["paper (nn.SGD)"][drop_at] > 0.5 * step_len["paper (nn.SGD)"][drop_at - 1]

# %%
import _helpers
_helpers.plot_momentum_after_drop(path, A, drop_at)      # the figure's code is in _helpers.py


# %% [markdown]
# Up to step 40 the two optimisers produce the same iterates, to rounding error, as the induction says. At the drop,
# PyTorch's step length falls at once, by a factor of about 10 (0.158 to 0.0137, printed above). The paper's keeps
# nearly its old size: the velocity was built at the
# old rate, and the pull back towards the minimum is now 10 times weaker, so the iterate overshoots further up the
# steep walls of the valley and $f$ even **rises** for a few iterations before the oscillation dies out. Afterwards both
# decay at the same geometric rate (set by the new learning rate and the momentum), the paper's run lagging behind by its
# detour. On this deliberately oscillating problem the difference is stark; with noisy minibatch gradients and thousands
# of iterations per epoch it is a short transient.
#
# Does it matter for AlexNet? Over 90 epochs of about 10,000 iterations each, a transient of a few dozen iterations after
# each of three drops is negligible, and either rule trains the network. It does matter in two places:
#
# * **Reproducing or comparing runs**: "SGD with lr 0.01, momentum 0.9, weight decay 5e-4" does not pin down the iterates
#   across a learning-rate change unless you say which rule.
# * **Moving optimizer state between the two conventions**: a PyTorch buffer $b$ becomes the paper's velocity as
#   $v = -\varepsilon b$, using the learning rate in force when it was built.
#
# ## 4. When to divide by 10: `nn.ReduceLROnPlateau`
#
# §5: "The heuristic which we followed was to divide the learning rate by 10 when the validation error rate stopped
# improving with the current learning rate. The learning rate was initialized at 0.01 and reduced three times prior to
# termination." The authors did this by hand. `nn.ReduceLROnPlateau(optimizer, factor=0.1, patience=1, threshold=1e-4,
# max_reductions=3)` automates it; call `.step(val_error)` once per epoch:
#
# * an epoch **improves** if its error is below the best so far by more than `threshold`;
# * after `patience + 1` consecutive epochs without improvement (two, with the default `patience=1`: one bad epoch is
#   forgiven as noise) the learning rate is multiplied by `factor`, and the count restarts; the best error is kept, so
#   the new rate has to beat it;
# * after `max_reductions` reductions, the next plateau sets `.finished = True`: the paper stopped training there.
#
# To see it act we need a validation-error curve. Training a network for dozens of epochs is not the point here, so we
# use a toy model of one: each epoch the error moves 30 % of the way towards a floor that is lower for smaller learning
# rates (a smaller step averages out more of the gradient noise), plus a little noise.

# %%
class Holder:          # anything with an .lr attribute will do as the "optimizer"
    lr = 0.01

opt = Holder()
scheduler = nn.ReduceLROnPlateau(opt, factor=0.1, patience=1, max_reductions=3)
noise = np.random.default_rng(0)
error, epochs, errors, lrs, events = 0.9, 0, [], [], []
print("epoch  val. error   best    bad epochs  lr")
while not scheduler.finished and epochs < 100:
    floor = 0.34 + 12 * opt.lr                        # toy: a smaller rate reaches a lower error
    error = floor + 0.7 * (error - floor) + noise.normal(0, 0.004)
    lr_before = opt.lr
    scheduler.step(error)
    epochs += 1
    errors.append(error); lrs.append(lr_before)
    note = "  -> lr / 10" if opt.lr < lr_before else ("  -> finished" if scheduler.finished else "")
    if note:
        events.append((epochs, note))
    print(f"{epochs:>5}  {error:.4f}      {scheduler.best:.4f}  {scheduler.bad_epochs:>4}        {lr_before:g}{note}")
assert [note for _, note in events] == ["  -> lr / 10"] * 3 + ["  -> finished"]     # three reductions, then stop

# %%
fig, ax = plt.subplots(figsize=(9, 3.8))
epochs_axis = np.arange(1, len(errors) + 1)
ax.plot(epochs_axis, errors, "o-", ms=4, label="validation error (toy)")
ax.set(xlabel="epoch", ylabel="validation error")
ax2 = ax.twinx()
ax2.step(epochs_axis, lrs, "C1", where="post", label="learning rate")
ax2.set_yscale("log"); ax2.set_ylabel("learning rate"); ax2.grid(False)
for epoch, note in events:
    ax.axvline(epoch, color="C3" if "finished" in note else "gray", ls=":", lw=1)
ax.set_title("ReduceLROnPlateau: three reductions, then stop")
fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88)); plt.tight_layout(); plt.show()

# %% [markdown]
# Each plateau costs two epochs of waiting (the price of `patience=1`), then the rate drops and the error falls to a new,
# lower floor; after the third reduction the improvements become tiny, and the next plateau ends training. A real
# validation error is noisier than this toy, which is what `patience` and `threshold` are for: with `patience=0` a single
# unlucky epoch would cut the learning rate. (`nn.StepLR` is the fixed alternative: divide every `step_size` epochs
# regardless of the curve.)

# %% [markdown]
# ## Exercise (graded): softmax cross-entropy, stable
#
# Write the mean cross-entropy of a batch of logits and its gradient $(p - \text{onehot}(t))/N$, without changing
# the logits you are given. Subtract each row's own maximum before exponentiating, and compute the loss in the
# log-sum-exp form of section 1: the grader (`graders/nb08.py`) compares with `nn.SoftmaxCrossEntropyLoss` on
# ordinary logits, on logits around 1000 (a naive `np.exp` overflows), on rows at very different scales in one batch
# (a batch-wide maximum underflows the low rows), on confidently wrong rows ($-\log$ of a softmax that underflowed to
# 0), on one example, and on float32 logits (the gradient keeps the logits' dtype).

# %%
# EXERCISE: softmax-xent
def softmax_cross_entropy(logits, labels):
    """logits (N, K), labels (N,) -> (mean loss, dL/dlogits of shape (N, K))."""
    raise NotImplementedError


# %%
from graders import grade, nb08
grade("softmax-xent", nb08.softmax_xent, softmax_cross_entropy)


# %% [markdown]
# ## Exercise (graded): the paper's update rule, across a change of learning rate
#
# Write section 3's rule as an optimizer, for every parameter it is given and in place:
#
# $$
# v \leftarrow \mu\, v - \lambda\,\varepsilon\, w - \varepsilon\, \frac{\partial L}{\partial w},
# \qquad w \leftarrow w + v ,
# $$
#
# with $\mu$ = `momentum` (0.9 in §5), $\lambda$ = `weight_decay` (0.0005) and $\varepsilon$ = `lr`, read at
# every step: the schedule of §5 divides `lr` by 10 while training runs, and the velocity built at the old rate must carry
# on (that is where the paper's rule and PyTorch's part, section 3). Leave `.grad` as it is (clearing it is
# `zero_grad`'s job). The grader runs your optimizer beside `nn.SGD` on two parameters for up to 12 steps, dividing
# `lr` by 10 part-way, for three settings of momentum and weight decay, and compares the weights before the drop, just
# after it and at the end.

# %%
# EXERCISE: sgd-update
class PaperSGD:
    """§5: v <- momentum v - weight_decay lr w - lr dL/dw ;  w <- w + v, for every parameter, in place."""

    def __init__(self, params, lr=0.01, momentum=0.9, weight_decay=5e-4):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.velocities = [np.zeros_like(param.data) for param in self.params]

    def step(self):
        raise NotImplementedError


# %%
grade("sgd-update", nb08.sgd_update, PaperSGD)


# %% [markdown]
# ## Exercises
#
# 1. **Converting optimizer state.** Run `TorchStyleSGD` for 30 steps on the quadratic, then convert its buffer into an
#    `nn.SGD` velocity ($v = -\varepsilon b$) and continue both for 30 more steps at the same learning rate. Check that the iterates
#    agree to rounding error. What goes wrong if you convert *after* changing the learning rate?
# 2. **Label smoothing.** Replace the one-hot target by $q = (1-\alpha)\,\text{onehot}(t) + \alpha/K$. Show that the
#    gradient becomes $(p - q)/N$, write a small loss class with `forward(logits, labels)` and `backward()`, and check it
#    with `check_module(nn.Flatten(), logits, loss=YourLoss(), labels=labels)`.
# 3. **A bigger drop.** Divide the learning rate by 100 instead of 10 in the quadratic experiment. How many iterations
#    does the paper's rule coast before its step length is within a factor 2 of PyTorch's? Predict it from $0.9^k$ first.
