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

# %%

# %% [markdown]
# # 13 · Capstone: a network made of your own layers
#
# Notebooks 02 to 08 had you write the pieces of `nn` one by one: the fully connected layer (02), the convolution
# by im2col (03), the ReLU's backward pass (04), local response normalization (05), pooling (06), dropout (07), the
# softmax cross-entropy and the paper's update rule (08). Each was checked on its own against the library. Here they
# work together: you assemble a small AlexNet from **your** layers only, train it with **your** loss and **your**
# update rule, and watch it overfit twenty photographs, the first thing any new network should be able to do
# (a network that cannot memorise twenty images has a bug).
#
# Nothing is copied by hand: `_capstone.from_notebooks()` opens the notebooks 02 to 08 as you last saved them and
# runs their `# EXERCISE:` cells, the stubs you filled in, into one namespace. A piece you have not written yet still
# raises `NotImplementedError`, and the grader below says "not done yet" until every piece the network uses works.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # our matrices are tiny: threads cost more than they save
import sys, pathlib
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works
# %matplotlib inline
import numpy as np
import matplotlib.pyplot as plt
import nn                                            # noqa: F401  (nn.Sequential, for your network)
import _capstone

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})

# %% [markdown]
# ## 1. Twenty images
#
# Four training photographs of each of the first five Imagenette classes, shrunk to 32 × 32 (`data.load_image_square`:
# the shorter side rescaled, the centre kept, §2) and centred per channel. Without photographs the cell says so and
# makes synthetic images instead (a coloured blob per class), which a network can memorise just as well.

# %%
images, labels, class_names, origin = _capstone.twenty_images()
print(f"{len(images)} images {images.shape[1:]}, {origin}; classes {class_names}")
fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for ax, image, label in zip(axes.ravel(), images, labels):
    shown = image.transpose(1, 2, 0)
    ax.imshow((shown - shown.min()) / (shown.max() - shown.min()))
    ax.set_title(str(label), fontsize=8); ax.axis("off")
plt.tight_layout(); plt.show()
assert images.shape == (20, 3, 32, 32) and np.bincount(labels).tolist() == [4] * 5

# %% [markdown]
# ## 2. Your layers
#
# `_capstone.PIECES` is the table of what the capstone takes from where: the notebook, the exercise, and the name its
# cell defines. Your functions become layers through thin wrappers that only hold the weights and call them:
#
# | layer | forward | backward |
# |---|---|---|
# | `mine.Conv2d(in, out, k, stride, padding, rng)` | your `conv2d_im2col` (03) | your `conv2d_im2col_backward` (03) |
# | `mine.ReLU()` | `np.maximum(x, 0)` | your `relu_backward` (04) |
# | `mine.LocalResponseNorm()` | your `lrn_loop` (05), the paper's constants | your `lrn_backward` (05) |
# | `mine.AvgPool2d(3, 2)` | your class (06) | your class (06) |
# | `mine.Dropout(p, rng)` | your `MyDropout` (07) | your `MyDropout` (07) |
# | `mine.Linear(in, out, rng)` | your `MyLinear` (02) | your `MyLinear` (02) |
# | `mine.Flatten()` | a reshape (`nn.Flatten`, not an exercise) | |
#
# and `mine.softmax_cross_entropy` (08) and `mine.SGD` (your `PaperSGD`, 08). `print(mine)` prints where each piece
# came from. The convolution's weights start from He's initialization, as in notebook 10.

# %% [markdown]
# ## Exercise (graded): assemble, train, overfit
#
# Write `build_network(mine, num_classes)`, returning an `nn.Sequential` made only of the layers above (at least a
# convolution, a ReLU and a fully connected layer; for example conv 5 × 5 → ReLU → LRN → pool → conv 3 × 3 → ReLU →
# pool → flatten → dropout → fully connected, on 32 × 32 inputs), and `train(network, mine, images, labels)`: full-batch
# steps of forward, `mine.softmax_cross_entropy`, `network.zero_grad()`, backward and `mine.SGD(...).step()`, returning
# the list of losses. The grader (`graders/nb13.py`) first compares every layer of your network, on its own
# activations, with the `nn` layer of the same weights (forward, backward, parameter gradients), and the loss and two
# update steps with `nn`'s; then it runs your training and wants the loss to fall to a tenth of its first value and
# every one of the twenty images classified right (at test time, dropout off). Keep it to a minute: a few dozen
# full-batch steps of a small network are enough.

# %%
# EXERCISE: capstone
mine = _capstone.from_notebooks()     # your exercise cells of notebooks 02-08, as you last saved them
print(mine)

def build_network(mine, num_classes):
    """An nn.Sequential of mine.Conv2d, mine.ReLU, mine.LocalResponseNorm, mine.AvgPool2d, mine.Flatten,
    mine.Dropout and mine.Linear layers, for (N, 3, 32, 32) inputs and num_classes outputs."""
    raise NotImplementedError

def train(network, mine, images, labels):
    """Trains with mine.softmax_cross_entropy and mine.SGD; returns the list of the training losses."""
    raise NotImplementedError


# %%
from graders import grade, nb13
record = {}                                            # the grader leaves the trained network and losses here
grade("capstone", nb13.capstone, mine, build_network, train, images, labels, record)

# %%
if record:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.semilogy(record["losses"], "o-", ms=3)
    ax.axhline(np.log(5), color="gray", ls=":", label="chance (ln 5)")
    ax.set(xlabel="step", ylabel="training loss", title="your network, twenty images"); ax.legend()
    plt.tight_layout(); plt.show()
    print(f"loss {record['losses'][0]:.3f} -> {record['losses'][-1]:.3f} in {len(record['losses'])} steps; "
          f"training accuracy {record['accuracy']:.0%}")
else:
    print("nothing to plot until the exercise above runs")

# %% [markdown]
# ## What this shows, and what it does not
#
# A loss that falls to nearly 0 on twenty images says that forward, backward, loss and update fit together: a wrong
# sign, a missing factor or a gradient sent to the wrong place would stop it or make it diverge. It says nothing about
# generalization: twenty images, thousands of weights, and the network remembers each photograph rather than
# its class. Notebook 10 trains on 200 images and measures on 40 others.
#
# ## More exercises
#
# 1. **Break one piece.** In your notebook 04, make `relu_backward` pass the gradient where $x < 0$ instead, save,
#    rerun this notebook: does the loss still fall? Which check of the grader catches it first, and which would catch
#    it if the grader only trained?
# 2. **Max-pooling.** Replace `mine.AvgPool2d` by a max-pooling layer written from notebook 06's section on its
#    backward pass (the gradient goes to each window's winner, and adds where windows overlap). Does the network
#    overfit faster or slower?
# 3. **Generalization.** Hold out one image per class, train on the other fifteen, and predict the five held out.
#    How many are right, and what does that say about twenty images as a training set?
