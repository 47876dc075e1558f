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
# # 12 · Two GPUs, two processes (§3.2)
#
# In 2012 a GTX 580 had 3 GB of memory, and the network did not fit on one. §3.2 of the paper:
#
# > we spread the net across two GPUs. [...] The parallelization scheme that we employ essentially puts half of
# > the kernels (or neurons) on each GPU, with one additional trick: the GPUs communicate only in certain layers.
# > This means that, for example, the kernels of layer 3 take input from all kernel maps in layer 2. However,
# > kernels in layer 4 take input only from those kernel maps in layer 3 which reside on the same GPU.
#
# Everywhere else in this project the two GPUs are *imitated* inside one process: `AlexNet(groups=2)` uses grouped
# convolutions (notebook 03) and an LRN whose window stays inside each half (notebook 05). Here we split the
# network for real: **two processes, each holding one tower**, exchanging activations exactly where the paper
# says, and we check that they compute the same function, gradients included, as the one-process network.
#
# How the two processes run in this notebook:
#
# * most cells run the two towers as **two in-process ranks**: two threads of this kernel, each with its own
#   `TowerAlexNet`, exchanging arrays through `alexnet.parallel.ThreadGroup`. The code is the very code that runs under
#   MPI (the collectives have the same names and meaning), and every array stays inspectable here;
# * one cell then runs the same check as **two real MPI processes** with `mpiexec -n 2` (a subprocess; skipped,
#   saying so, when `mpiexec` is not installed). Training works the same way:
#   `mpiexec -n 2 python -m alexnet train --towers ...`.
#
# Contents: 1. what each tower holds; 2. where they exchange, and how many bytes; 3. the exchange as a layer, with its
# backward pass; 4. the equivalence check; 5. under `mpiexec`; 6. "one weird trick"; 7. an exercise.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # two ranks on a small machine: one BLAS thread each
import sys, pathlib, shutil, subprocess, tempfile
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt

from alexnet.model import AlexNet
from alexnet.summary import layer_rows
from alexnet.parallel import (AllGather, ThreadGroup, TowerAlexNet, exchange_bytes, join_state_dicts,
                              split_state_dict, tower_parameter_table)
from nn import SGD, SoftmaxCrossEntropyLoss

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 1. What each tower holds
#
# Rank $g \in \{0, 1\}$ holds tower $g$ of Figure 2. Every weight and bias of the one-process `AlexNet(groups=2)`
# lives on exactly one rank, cut along its **first (output) axis**: tower $g$ holds the output channels (or neurons)
# $[g\,C/2,\ (g+1)\,C/2)$ of every layer. What differs from layer to layer is what a tower's kernels *read*:
#
# * conv1: 48 of the 96 kernels, each seeing the whole image (both processes read the same batch);
# * conv2, conv4, conv5: group $g$ of the grouped convolution, reading only this tower's maps;
# * conv3: 192 of the 384 kernels, each reading **all 256** of conv2's maps, so the towers must exchange first;
# * fc6, fc7: 2048 of the 4096 neurons, reading everything below; fc8: 500 of the 1000 class scores.
#
# The channel order matters. The grouped conv2 of the one-process network gives group $g$ its output channels
# $[g\,C/2, (g+1)\,C/2)$ and reads input channels $[g\,C'/2, (g+1)\,C'/2)$; so conv1's and conv3's halves must
# be cut from the same ranges, and the exchanges must concatenate in rank order (tower 0 first). Then each
# tower's maps sit exactly where the next grouped layer of the one-process network reads them.

# %%
full = AlexNet(num_classes=1000, crop=227, groups=2, seed=0)   # the paper's network, 60,965,224 parameters
rows = tower_parameter_table(full)
print(f"{'parameter':<14} {'one process':>20} {'tower 0':>20} {'tower 1':>20}   the tower's kernels read")
for name, whole, t0, t1, reads in rows:
    print(f"{name:<14} {str(whole):>20} {str(t0):>20} {str(t1):>20}   {reads if name.endswith('weight') else ''}")
per_tower = [sum(int(np.prod(r[2 + g])) for r in rows) for g in range(2)]
print(f"\nparameters: tower 0 {per_tower[0]:,}, tower 1 {per_tower[1]:,}, together {sum(per_tower):,} "
      f"(one process: {full.num_parameters():,})")
assert sum(per_tower) == full.num_parameters() == 60_965_224

# %% [markdown]
# Cutting a state dict into the towers' shares and joining them back are two one-liners
# (`alexnet.parallel.split_state_dict` / `join_state_dicts`); this is how `train --towers` writes an ordinary
# checkpoint from rank 0 that every one-process tool (`evaluate`, `predict`, `visualize`) reads.

# %%
state = full.state_dict()
shares = [split_state_dict(state, g) for g in range(2)]
joined = join_state_dicts(shares)
assert all(np.array_equal(joined[k], state[k]) for k in state)
# tower 1's conv2 IS the second group of the one-process grouped conv2:
assert np.array_equal(shares[1]["conv2.weight"], full.conv2.weight.data[128:])
print("split and join are inverse; tower 1's conv2 =", shares[1]["conv2.weight"].shape,
      "= rows 128..255 of", full.conv2.weight.data.shape)

# %% [markdown]
# ## 2. Where they exchange, and how many bytes
#
# The towers exchange activations at five points (in forward order): conv3's input (both towers' pooled conv2
# maps), fc6's input (both pool5 halves), fc7's input, fc8's input, and the logits (for the loss). Each exchange is
# an **all-gather** along the channel or feature axis: each rank sends its half and receives the other.
# In the backward pass each rank sends back the gradient for the other tower's half (section 3).
#
# For a batch of $N$ images in float32, at each exchange point one rank sends
# $N \times (\text{its share of the channels}) \times H \times W \times 4$ bytes forward and as many backward
# (nothing comes back for the logits: every rank computes the same loss).

# %%
traffic = exchange_bytes(full, batch=128, itemsize=4)
print(f"{'exchange':<9} {'what crosses':<42} {'forward MB':>10} {'backward MB':>11}")
for t in traffic:
    print(f"{t['exchange']:<9} {t['what']:<42} {t['bytes_forward'] / 1e6:10.2f} {t['bytes_backward'] / 1e6:11.2f}")
towers_bytes = sum(t["bytes_forward"] + t["bytes_backward"] for t in traffic)
fc67_bytes = sum(p.size for p in (full.fc6.weight, full.fc6.bias, full.fc7.weight, full.fc7.bias)) * 4
all_bytes = full.num_parameters() * 4
print(f"\none rank sends {towers_bytes / 1e6:.1f} MB per training step (batch 128, crop 227)")
print(f"fc6 + fc7 hold {fc67_bytes / 1e6:.1f} MB of weights; all layers {all_bytes / 1e6:.1f} MB")
assert 30e6 < towers_bytes < 32e6 and fc67_bytes > 6.5 * towers_bytes

# %% [markdown]
# This is the paper's reason for splitting the *network* rather than the *batch*. Data-parallel training (each
# GPU a full copy of the network, half of the batch) must add up every gradient of every parameter each step:
# on two GPUs a ring all-reduce sends about the whole gradient, 244 MB, from each GPU, most of it fc6's and fc7's.
# The towers send 31 MB of activations, an eighth of that, and most of it (22 MB) at conv3's input, while the
# fully connected layers, which hold 58.6 million of the 61 million weights (fc6 and fc7 alone 218 MB), need only
# 4.5 MB of exchanges between them (fc7's and fc8's inputs and the logits, both ways).

# %%
fig, ax = plt.subplots(figsize=(8, 3.2))
labels = [t["exchange"] + "\n" + t["what"].split(":")[0] for t in traffic] + ["towers\ntotal", "fc6+fc7\nweights",
                                                                              "data-parallel\ngradients"]
values = [(t["bytes_forward"] + t["bytes_backward"]) / 1e6 for t in traffic] + [towers_bytes / 1e6, fc67_bytes / 1e6,
                                                                                  all_bytes / 1e6]
colors = ["tab:blue"] * len(traffic) + ["tab:green", "tab:gray", "tab:red"]
ax.bar(range(len(values)), values, color=colors)
ax.set_xticks(range(len(values)), labels, fontsize=7)
ax.set_yscale("log")
ax.set_ylabel("MB per rank per step")
ax.set_title("What crosses per step (batch 128, crop 227, float32)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The exchange as a layer, forward and backward
#
# `alexnet.parallel.AllGather(comm, axis)` is an ordinary `nn.Module`. Forward, every rank $g$ passes its slice $x_g$
# and gets the same concatenation
#
# $$ y = [\,x_0 \;\, x_1\,] \quad\text{(on every rank)}. $$
#
# Backward is the interesting part. Each rank continues from its **own copy** $y^{(r)}$ and computes its own part
# of what follows (tower $r$'s half of conv3, say), so the loss depends on $x_g$ through both copies:
#
# $$ \frac{\partial L}{\partial x_g} = \sum_r \left(\frac{\partial L}{\partial y^{(r)}}\right)_{\text{slice } g}. $$
#
# Every rank adds up the gradients of all copies and keeps its own slice: a **reduce-scatter**, the adjoint of the
# all-gather. At the logits it is different: both ranks compute the *same* loss from the same full logits, so each
# already holds the whole gradient and summing would count it twice; there the layer (`downstream="replicated"`)
# just keeps its slice, with no communication.
#
# A hand check with two in-process ranks: the downstream of rank $r$ is $L_r = \langle w_r, y^{(r)}\rangle$, so
# $\partial L/\partial x_g = (w_0 + w_1)_{\text{slice } g}$.

# %%
rng = np.random.default_rng(0)
xs = [rng.standard_normal((2, 3)) for _ in range(2)]           # each rank's slice: 2 examples x 3 features
ws = [rng.standard_normal((2, 6)) for _ in range(2)]           # dL_r / dy^(r) on each rank

def rank_program(comm):
    layer = AllGather(comm, axis=1)
    y = layer.forward(xs[comm.rank])
    return y, layer.backward(ws[comm.rank]), layer.bytes_forward, layer.bytes_backward

for g, (y, dx, sent_f, sent_b) in enumerate(ThreadGroup(2).run(rank_program)):
    assert np.array_equal(y, np.concatenate(xs, axis=1))
    assert np.allclose(dx, (ws[0] + ws[1])[:, 3 * g:3 * g + 3])
    print(f"rank {g}: y has shape {y.shape}; dL/dx_{g} = (w0 + w1)[:, {3 * g}:{3 * g + 3}]; "
          f"sent {sent_f} bytes forward, {sent_b} backward")

# %% [markdown]
# ## 4. The equivalence check
#
# The two-tower network must compute **the same function** as the one-process `AlexNet(groups=2)`: the same
# logits and the same gradient for every parameter, for the same weights. We use a reduced network (width 1/16,
# crop 67, 10 classes) in float64 with dropout on. The towers draw the full-width dropout mask from the same
# generator as the one-process network and keep their columns, so even the masks agree.

# %%
small = dict(num_classes=10, crop=67, width=1 / 16, seed=3, dtype=np.float64)
x = rng.standard_normal((8, 3, 67, 67))
labels = rng.integers(0, 10, 8)

def forward_backward(model):
    criterion = SoftmaxCrossEntropyLoss()
    logits = model.forward(x)
    loss = criterion.forward(logits, labels)
    model.zero_grad()
    model.backward(criterion.backward())
    return logits, loss

one = AlexNet(**small)
logits, loss = forward_backward(one)

def tower_program(comm):
    tower = TowerAlexNet(comm, **small)          # every rank builds the same reference and keeps its share
    t_logits, t_loss = forward_backward(tower)
    grads = tower.gather_rows({name: p.grad for name, p in tower.named_parameters()})
    return t_logits, t_loss, grads, tower.traffic(), tower.num_parameters()

results = ThreadGroup(2).run(tower_program)

def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())

for g, (t_logits, t_loss, grads, _, count) in enumerate(results):
    logit_error = rel(t_logits, logits)
    grad_error = max(rel(grads[name], p.grad) for name, p in one.named_parameters())
    print(f"tower {g} ({count:,} parameters): loss {t_loss:.12f} (one process {loss:.12f}); "
          f"max rel. error of the logits {logit_error:.1e}, of the 16 gradients {grad_error:.1e}")
    assert logit_error < 1e-10 and grad_error < 1e-10

# %% [markdown]
# Equal to rounding error (the two towers add some products in a different order than one big matrix product, so
# the last bits may differ). The bytes the exchange layers measured are the ones predicted from the shapes in
# section 2:

# %%
measured = results[0][3]
predicted = exchange_bytes(one, batch=8, itemsize=8)
for m, p in zip(measured, predicted):
    print(f"{m['exchange']}: {m['shape']!s:<16} measured {m['bytes_forward']:>6} B forward, "
          f"{m['bytes_backward']:>6} B backward; predicted {p['bytes_forward']:>6}, {p['bytes_backward']:>6}")
    assert (m["bytes_forward"], m["bytes_backward"]) == (p["bytes_forward"], p["bytes_backward"])

# %% [markdown]
# And a short training run: five SGD steps (momentum, weight decay, dropout) in float32, on both sides. The final
# weights agree up to float32 rounding noise.

# %%
small32 = dict(small, dtype=np.float32, init="kaiming")
x32 = x.astype(np.float32)

def train_steps(model, steps=5):
    optimizer = SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        criterion = SoftmaxCrossEntropyLoss()
        criterion.forward(model.forward(x32), labels)
        model.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()
    return model

one32 = train_steps(AlexNet(**small32)).state_dict()
finals = ThreadGroup(2).run(lambda comm: train_steps(TowerAlexNet(comm, **small32)).full_state_dict())
start = AlexNet(**small32).state_dict()
worst = max(rel(finals[0][k], one32[k]) for k in one32)
moved = min(np.abs(one32[k] - start[k]).max() for k in one32 if k.endswith("weight"))
print(f"after 5 steps: max rel. difference of the weights {worst:.1e} (every weight moved, by at least {moved:.1e})")
assert worst < 2e-5 and moved > 0

# %% [markdown]
# ## 5. Under `mpiexec`: two real processes
#
# The same check with two operating-system processes talking over MPI (`mpi4py` and the `mpich` wheel:
# `pip install -e ".[mpi]"`). The notebook writes a small script and runs it with `mpiexec -n 2`; each process
# computes the one-process reference for itself and compares. Training from the command line is the same idea:
#
#     mpiexec -n 2 python -m alexnet train --towers --data DIR ...

# %%
script = r'''
import numpy as np
from alexnet.model import AlexNet
from alexnet.parallel import TowerAlexNet, get_communicator
from nn import SoftmaxCrossEntropyLoss

comm = get_communicator()
small = dict(num_classes=10, crop=67, width=1 / 16, seed=3, dtype=np.float64)
rng = np.random.default_rng(0)
x, labels = rng.standard_normal((8, 3, 67, 67)), rng.integers(0, 10, 8)

def forward_backward(model):
    criterion = SoftmaxCrossEntropyLoss()
    logits = model.forward(x)
    criterion.forward(logits, labels)
    model.zero_grad()
    model.backward(criterion.backward())
    return logits

one, tower = AlexNet(**small), TowerAlexNet(comm, **small)
logits, t_logits = forward_backward(one), forward_backward(tower)
grads = tower.gather_rows({name: p.grad for name, p in tower.named_parameters()})
rel = lambda a, b: float(np.abs(a - b).max() / np.abs(b).max())
grad_error = max(rel(grads[n], p.grad) for n, p in one.named_parameters())
sent = sum(t["bytes_forward"] + t["bytes_backward"] for t in tower.traffic())
print(f"process {comm.rank} of {comm.size}: {tower.num_parameters():,} parameters, logits rel. error "
      f"{rel(t_logits, logits):.1e}, gradients {grad_error:.1e}, sent {sent:,} bytes", flush=True)
assert rel(t_logits, logits) < 1e-10 and grad_error < 1e-10
'''
beside = pathlib.Path(sys.executable).parent / "mpiexec"       # where the mpich wheel puts it
mpiexec = shutil.which("mpiexec") or (str(beside) if beside.exists() else None)
try:
    import mpi4py  # noqa: F401
except ImportError:
    mpiexec = None
if mpiexec is None:
    print("skipped: mpiexec or mpi4py is not installed here (pip install -e \".[mpi]\"); sections 3-4 ran the "
          "same code with two in-process ranks")
else:
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "two_towers.py"
        path.write_text(script)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(pathlib.Path.cwd().parent),
                                                            os.environ.get("PYTHONPATH")])))
        done = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "mpi4py", str(path)], env=env,
                              capture_output=True, text=True, timeout=120)
    print(done.stdout.strip() or done.stderr[-2000:])
    assert done.returncode == 0 and done.stdout.count("process ") == 2

# %% [markdown]
# ## 6. "One weird trick"
#
# Two years later Krizhevsky revisited the question ("One weird trick for parallelizing convolutional neural
# networks", 2014). The convolutional layers hold few of the weights but do most of the arithmetic; the fully
# connected layers are the opposite. So the best split is different for the two parts: **data parallelism for the
# convolutional layers** (every GPU a copy of the small conv weights and its own share of the batch; only
# the conv gradients, about 9 MB, are summed) and **model parallelism for the fully connected layers** (each GPU
# holds a slice of fc6 to fc8, as our towers do, and the GPUs exchange the activations of the batch, which are small).
# The numbers for our network:

# %%
rows = [r for r in layer_rows(full) if r.parameters]
conv = [r for r in rows if r.name.startswith("conv")]
fc = [r for r in rows if r.name.startswith("fc")]
total_params, total_macs = sum(r.parameters for r in rows), sum(r.macs for r in rows)
for part, layers in (("conv1-conv5", conv), ("fc6-fc8", fc)):
    p, m = sum(r.parameters for r in layers), sum(r.macs for r in layers)
    print(f"{part}: {p / 1e6:5.1f}M parameters ({100 * p / total_params:4.1f} %), "
          f"{m / 1e6:5.0f}M multiply-adds per image ({100 * m / total_macs:4.1f} %)")

# %% [markdown]
# Under 4 % of the parameters do about 92 % of the arithmetic, and the other 96 % (fc6 to fc8: 58.6 million
# weights, 234 MB in float32) only 8 %. In data-parallel training the all-reduce is
# proportional to the parameters, so the conv layers are cheap to replicate; in model-parallel training the
# exchange is proportional to the activations, which for fc6 to fc8 are a few thousand numbers per image.
#
# ## 7. Exercise: the bytes at fc6's input
#
# Write `fc6_exchange_bytes(batch, crop, width=1.0, itemsize=4)`: the bytes **one rank sends forward** at fc6's
# input (`gather5`, both pool5 halves) for the two-tower AlexNet with 1000 classes. You need conv5's number of
# kernels at this width (`alexnet.model.scaled_channels(256, width, 2)`), the side of pool5 at this crop
# (`alexnet.model.spatial_sizes(crop)["pool5"]`), and the fact that each tower holds half of conv5's maps.
# The cell after it grades your function (`graders/nb12.py`) against `alexnet.parallel.exchange_bytes` at five batch
# sizes, crops, widths (one where conv5's kernels are rounded to an even count) and float sizes: PASS / FAIL, or
# "not done yet" while the stub still raises.

# %%
# EXERCISE: fc6-bytes
from alexnet.model import scaled_channels, spatial_sizes  # noqa: F401  (for your solution)

def fc6_exchange_bytes(batch, crop, width=1.0, itemsize=4):
    """Bytes one rank sends forward at fc6's input (its half of the pool5 maps, for every image)."""
    raise NotImplementedError        # batch x (conv5's kernels / 2) x pool5's side^2 x itemsize


# %%
from graders import grade, nb12
grade("fc6-bytes", nb12.fc6_bytes, fc6_exchange_bytes, tolerance=1e-12)

# %% [markdown]
# (A solution is in `tutorials/solutions/12_two_gpus.py`.)
#
# More to try:
#
# 1. **Where is the traffic?** Most bytes cross at conv3's input. How would they change at crop 112 (the reduced
#    recipe)? Compute it with `exchange_bytes`, then check against
#    `python benchmarks/bench_distributed.py --crops 112 --schemes towers` (its `sent MB/rank` column).
# 2. **Groups everywhere?** If conv3 were grouped as well, the towers would exchange nothing at conv3's input
#    (`gather2`). What share of one step's traffic (forward and backward, every exchange of `exchange_bytes`) is that
#    at batch 128, and what could the network no longer compute?
# 3. **LRN across the towers.** Caffe's BVLC AlexNet normalizes across all 96 maps. Why does
#    `TowerAlexNet` refuse `lrn_groups=1`? Which maps would a tower need from the other, at each LRN layer?
