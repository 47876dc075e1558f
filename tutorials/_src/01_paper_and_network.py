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
# # 01 · The paper and the network
#
# In 2012 Alex Krizhevsky, Ilya Sutskever and Geoffrey Hinton entered a convolutional neural network in the
# ImageNet competition (ILSVRC) and won with a top-5 error of 15.3 %, against 26.2 % for the next entry.
# Their paper, *ImageNet Classification with Deep Convolutional Neural Networks* (NIPS 2012), is only nine pages
# long, and almost every sentence of it is a design decision. This series of notebooks rebuilds the whole
# thing from NumPy up. Here is the paper in one table, with where each part lives in this project:
#
# | § | what the paper says | in this project |
# | --- | --- | --- |
# | 2 | ImageNet; rescale to 256, central crop, subtract the mean image | `data.prepare_subset` (notebook 09) |
# | 3.1 | ReLU instead of tanh: trains several times faster | `nn.ReLU` |
# | 3.2 | the network is split over two GPUs | `groups=2` in `nn.Conv2d` (this notebook) |
# | 3.3 | local response normalization | `nn.LocalResponseNorm` |
# | 3.4 | overlapping max-pooling, 3 × 3 windows with stride 2 | `nn.MaxPool2d(3, 2)` |
# | 3.5 | the overall architecture, Figure 2 | `alexnet.AlexNet` (this notebook) |
# | 4.1 | random crops, reflections, PCA lighting; ten crops at test time | `data.train_batch`, `data.ten_crop_batch` (notebook 09) |
# | 4.2 | dropout in fc6 and fc7 | `nn.Dropout` |
# | 5 | SGD with momentum 0.9, weight decay 0.0005, batch 128, learning rate divided by 10 on plateaus | `nn.SGD`, `nn.ReduceLROnPlateau`, `python -m alexnet train` (notebook 10) |
# | 6 | results; Figure 3 (conv1 kernels), Figure 4 (predictions, nearest neighbours) | `python -m alexnet evaluate / predict / visualize` (notebook 10) |
#
# This notebook is about §3.5 and §3.2: **what the network is**. We will read Figure 2 as a table, count
# its 60,965,224 parameters by hand, settle the famous "224 or 227?" puzzle, see what the two-GPU split does
# to the parameter count, and finish with a gradient check of the whole network, end to end.

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import sys, pathlib, time
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works

import numpy as np
import matplotlib.pyplot as plt

import nn
import data
from alexnet import AlexNet, spatial_sizes, layer_rows
from nn.conv import conv_output_size

# %matplotlib inline
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
notebook_start = time.perf_counter()

# %% [markdown]
# ## 1 · Figure 2 as a table
#
# Figure 2 of the paper draws the network as two stacks of boxes, one per GPU. Read from input to output,
# it says (§3.5):
#
# * **conv1**: 96 kernels of size 11 × 11 × 3, stride 4, then ReLU, response normalization and max-pooling;
# * **conv2**: 256 kernels of size 5 × 5 × 48, then ReLU, normalization, pooling;
# * **conv3**: 384 kernels of size 3 × 3 × 256; **conv4**: 384 of 3 × 3 × 192; **conv5**: 256 of
#   3 × 3 × 192, then pooling (no normalization or pooling between conv3, conv4, conv5);
# * **fc6**, **fc7**: 4096 neurons each, with dropout; **fc8**: 1000 outputs, fed to a softmax.
#
# ReLU follows every learned layer except fc8 (the paper's own sentence is broader; see the note below). `alexnet.AlexNet`
# builds exactly this from the layers of `nn`,
# and `summary()` prints it as a table, computed from the layers' shapes (without running the network). The
# last column counts multiply-accumulate operations (MACs) for one image; a MAC is two floating-point
# operations, so FLOPs = 2 × MACs. Building the full model takes a few seconds: it draws 61 million random
# numbers for the initial weights.

# %%
t0 = time.perf_counter()
model = AlexNet(num_classes=1000, crop=227, groups=2, seed=0)
print(f"built in {time.perf_counter() - t0:.1f} s\n")
model.summary();

# %% [markdown]
# Two things stand out, and a picture makes them obvious: **the convolutional layers hold 4 % of the
# parameters but do 92 % of the arithmetic**, while the fully connected layers are the other way round
# (fc6 alone holds 62 % of all parameters). This is why the paper worries about overfitting in the fully
# connected layers (dropout is applied to fc6 and fc7 only) and about speed in the convolutional ones (the
# hand-written GPU convolution code).
#
# **"ReLU follows every layer", except the last.** §3.5 says "the ReLU non-linearity is applied to the output of
# every convolutional and fully-connected layer". Read literally, that includes fc8, and it cannot be meant: fc8's
# 1000 outputs go into the softmax, and a ReLU there would clamp every negative logit to 0, so the network could not
# make a class *less* likely than the zero-logit ones, and the gradient would stop at every class whose logit is
# negative. Caffe's BVLC AlexNet and torchvision's AlexNet both end with fc8 and no nonlinearity; so does `AlexNet`,
# whose last layer is fc8 itself (checked in the next cell).

# %%
assert [name for name, _ in model.named_children()][-2:] == ["drop7", "fc8"]   # no ReLU after fc8
rows = [r for r in layer_rows(model) if r.parameters]
names = [r.name for r in rows]
params = np.array([r.parameters for r in rows])
flops = 2 * np.array([r.macs for r in rows])
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
axes[0].bar(names, params / 1e6, color=["tab:blue"] * 5 + ["tab:orange"] * 3)
axes[0].set_title(f"parameters (millions), total {params.sum():,}")
axes[1].bar(names, flops / 1e9, color=["tab:blue"] * 5 + ["tab:orange"] * 3)
axes[1].set_title(f"GFLOPs per 227 x 227 image, total {flops.sum() / 1e9:.2f}")
for ax in axes: ax.grid(axis="y", alpha=0.3)
plt.tight_layout(); plt.show()
conv = slice(0, 5)
print(f"conv layers: {params[conv].sum() / params.sum():.1%} of the parameters, "
      f"{flops[conv].sum() / flops.sum():.1%} of the FLOPs; fc6: {params[5] / params.sum():.1%} of the parameters")
assert round(100 * params[conv].sum() / params.sum()) == 4 and round(100 * flops[conv].sum() / flops.sum()) == 92
assert names[5] == "fc6" and round(100 * params[5] / params.sum()) == 62

# %% [markdown]
# ## 2 · Counting 60,965,224 parameters by hand
#
# A convolution with $C_{\text{out}}$ kernels of size $k \times k$, each looking at $C_{\text{in}}/g$ input
# channels ($g$ = number of groups, see section 4), has
#
# $$ \underbrace{C_{\text{out}} \cdot \frac{C_{\text{in}}}{g} \cdot k^2}_{\text{weights}} + \underbrace{C_{\text{out}}}_{\text{biases}} $$
#
# parameters, and a fully connected layer from $n$ to $m$ units has $nm + m$. The only number that needs any
# thought is fc6's input: the $256$ maps of pool5, each $6 \times 6$, flattened into
# $256 \cdot 6 \cdot 6 = 9216$ numbers.

# %%
layers = [  # name, C_out, C_in, k, groups
    ("conv1",  96,   3, 11, 1),
    ("conv2", 256,  96,  5, 2),
    ("conv3", 384, 256,  3, 1),
    ("conv4", 384, 384,  3, 2),
    ("conv5", 256, 384,  3, 2),
]
total = 0
for name, c_out, c_in, k, g in layers:
    n = c_out * (c_in // g) * k * k + c_out
    total += n
    print(f"{name}: {c_out:4d} x {c_in // g:3d} x {k}x{k} + {c_out:4d} = {n:>12,}")
for name, n_in, n_out in [("fc6", 256 * 6 * 6, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]:
    n = n_in * n_out + n_out
    total += n
    print(f"{name}: {n_in:5d} x {n_out:4d} + {n_out:4d}     = {n:>12,}")
print(f"total                          = {total:>12,}")
print(f"model.num_parameters()         = {model.num_parameters():>12,}")
assert total == model.num_parameters() == 60_965_224

# %% [markdown]
# ### Neurons: the paper's per-layer counts against ours
#
# The paper rounds the parameters to "60 million" and speaks of "650,000 neurons"; §3.5 also lists the neurons
# layer by layer: 253,440–186,624–64,896–64,896–43,264–4096–4096–1000. A neuron is one output value of a learned
# layer, so our counts are the products of the output shapes at the 227 crop:

# %%
paper = dict(zip(names, [253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]))
ours = {r.name: int(np.prod(r.output_shape)) for r in rows}
for name in names:
    shape = " x ".join(map(str, rows[names.index(name)].output_shape))
    print(f"{name:<6} ours {ours[name]:>9,} ({shape:<12})  paper {paper[name]:>9,}  {'same' if ours[name] == paper[name] else 'DIFFERENT'}")
print(f"total  ours {sum(ours.values()):>9,}{'':16}paper {sum(paper.values()):>9,}")
assert [n for n in names if ours[n] != paper[n]] == ["conv1"]
assert ours["conv1"] == 55 * 55 * 96 == 290_400 and sum(ours.values()) == 659_272 and sum(paper.values()) == 622_312
assert 253_440 % 96 == 0 and int(np.sqrt(253_440 // 96)) ** 2 != 253_440 // 96    # 2640 maps of 96: not a square

# %% [markdown]
# Seven of the eight agree exactly: conv2's 27 × 27 × 256 = 186,624, conv3 and conv4's 13 × 13 × 384 = 64,896, conv5's
# 13 × 13 × 256 = 43,264 and the fully connected layers. Only conv1 differs: 96 maps of 55 × 55 make 290,400, and
# the paper's 253,440 is 96 × 2640, where 2640 is not the area of any square map (nor does the 224 crop help: it gives
# 54 × 54 × 96 = 279,936). It looks like a slip in the paper's arithmetic; no input size reproduces it. With conv1 at
# 290,400 the eight layers have 659,272 neurons, and with the paper's conv1 figure 622,312: "650,000" is a round
# number between the two.

# %% [markdown]
# ## 3 · 224 or 227?
#
# The paper says the input is 224 × 224 × 3 and that conv1 produces 55 × 55 maps. Those two statements do
# not fit together. A convolution (or pooling) with kernel $K$, stride $s$ and padding $P$ on an $H \times H$
# input has
#
# $$ H_{\text{out}} = \left\lfloor \frac{H + 2P - K}{s} \right\rfloor + 1 $$
#
# outputs per side. For conv1, $K = 11$ and $s = 4$, and the paper mentions no padding:
#
# $$ H = 227:\ \frac{227 - 11}{4} + 1 = \frac{216}{4} + 1 = 55 \quad\checkmark \qquad
#    H = 224:\ \frac{224 - 11}{4} + 1 = \frac{213}{4} + 1 = 54.25 \ \to\ 54 .$$
#
# With 224 the division does not even come out even: the 54 windows start at columns 0, 4, ..., 212, the last one
# ends at column 222, and the last column and row (index 223) are never seen (counted in the next cell). So either the input was really 227 × 227 (the choice of most
# re-implementations, and of this project: `AlexNet(crop=227)` is the default), or the first layer was padded.
# Let's follow both sizes through the whole network:

# %%
for crop in (224, 227):
    sizes = spatial_sizes(crop)
    print(f"crop {crop}: " + "  ".join(f"{k} {v}" for k, v in sizes.items()))
print("\nconv1 arithmetic: (224 - 11) / 4 + 1 =", (224 - 11) / 4 + 1, "  (227 - 11) / 4 + 1 =", (227 - 11) / 4 + 1)
print("with padding 2:   (224 + 4 - 11) / 4 + 1 =", (224 + 4 - 11) / 4 + 1, "-> floor:", conv_output_size(224, 11, 4, 2))
seen = np.zeros(224, bool)
for start in range(0, 4 * conv_output_size(224, 11, 4, 0), 4):      # conv1's windows along one axis, at 224
    seen[start:start + 11] = True
print("unseen columns at 224:", np.flatnonzero(~seen).tolist())
assert np.flatnonzero(~seen).tolist() == [223]                       # "the last column and row", above

fc6_227 = 256 * spatial_sizes(227)["pool5"] ** 2
fc6_224 = 256 * spatial_sizes(224)["pool5"] ** 2
print(f"\nfc6 input: {fc6_227} at 227 (6 x 6 maps), {fc6_224} at 224 (5 x 5 maps)")
print(f"parameters at 224: {60_965_224 - (fc6_227 - fc6_224) * 4096:,}  (at 227: 60,965,224)")
assert round((fc6_227 - fc6_224) * 4096 / 1e6, 1) == 11.5          # "fc6 loses 11.5 million weights", below

# %% [markdown]
# The choice is not cosmetic: with 224 and no padding, pool5 leaves 5 × 5 maps instead of 6 × 6, and fc6
# loses 11.5 million weights. The 13 × 13 maps that Figure 2 gives for conv3 to conv5 (which pool to 6 × 6)
# and its "60 million" parameters both point to 227. The network itself does not care: `AlexNet(crop=C)`
# works for any $C \ge 67$ and sizes fc6 accordingly, which is how notebook 10 trains a small version on
# small crops.

# %% [markdown]
# ## 4 · Why two groups? (§3.2)
#
# A GTX 580 had 3 GB of memory, too little for this network, so the authors spread it over **two GPUs**,
# "putting half of the kernels (or neurons) on each GPU, with one additional trick: the GPUs communicate only in
# certain layers. This means that, for example, the kernels of layer 3 take input from all kernel maps in layer 2.
# However, kernels in layer 4 take input only from those kernel maps in layer 3 which reside on the same GPU."
#
# A convolution in which the input channels and the kernels are split into $g$ groups, and each kernel only
# sees the channels of its own group, is a **grouped convolution**. With the channels of the GPU-1 half first,
#
# $$ \text{out}_f = \sum_{c \,\in\, \text{group}(f)} w_{f,c} * \text{in}_c + b_f ,
#    \qquad \text{group}(f) = \Big\{ \tfrac{C_{\text{in}}}{g} j, \dots, \tfrac{C_{\text{in}}}{g}(j+1) - 1 \Big\},\ j = \Big\lfloor \frac{f}{C_{\text{out}}/g} \Big\rfloor ,$$
#
# so each kernel has only $C_{\text{in}}/g$ input channels: that is the "5 × 5 × **48**" of conv2 (48 = 96/2)
# and the "3 × 3 × **192**" of conv4 and conv5 (192 = 384/2). conv3 ("3 × 3 × 256") sees all 256 maps of
# conv2: the GPUs exchange data there, and before fc6. In `nn.Conv2d` this is the `groups` argument, and
# the weight tensor has shape $(C_{\text{out}}, C_{\text{in}}/g, k, k)$.
#
# First, a grouped convolution *is* two independent convolutions side by side. Let's check that numerically
# on a small example:

# %%
rng = np.random.default_rng(0)
grouped = nn.Conv2d(8, 6, 3, padding=1, groups=2, rng=rng)
print("grouped weight shape:", grouped.weight.data.shape, "(C_out, C_in / groups, k, k)")
x = rng.normal(size=(2, 8, 7, 7)).astype(np.float32)

# the same thing as two separate convolutions, one per "GPU"
halves = []
for j in range(2):
    gpu = nn.Conv2d(4, 3, 3, padding=1)
    gpu.weight.data[...] = grouped.weight.data[3 * j:3 * (j + 1)]
    gpu.bias.data[...] = grouped.bias.data[3 * j:3 * (j + 1)]
    halves.append(gpu(x[:, 4 * j:4 * (j + 1)]))
two_gpus = np.concatenate(halves, axis=1)
print("max |grouped - two separate convolutions| =", float(np.abs(grouped(x) - two_gpus).max()))
assert np.abs(grouped(x) - two_gpus).max() < 1e-5 and grouped.weight.data.shape == (6, 4, 3, 3)

# %% [markdown]
# Now the cost. Grouping halves the weights (and the multiply-adds) of conv2, conv4 and conv5, because each
# kernel sees half the channels; conv1, conv3 and the fully connected layers are unchanged. Building the three
# affected layers both ways (cheap: the big fully connected layers are not involved):

# %%
extra = 0
print(f"{'layer':<6}{'groups=2':>12}{'groups=1':>12}")
for name, c_out, c_in, k, g in layers:
    if g == 1:
        continue
    two = nn.Conv2d(c_in, c_out, k, groups=2).num_parameters()
    one = nn.Conv2d(c_in, c_out, k, groups=1).num_parameters()
    extra += one - two
    print(f"{name:<6}{two:>12,}{one:>12,}")
print(f"\none tower (groups=1): {60_965_224 + extra:,} parameters, {extra:,} more than the two-GPU network")
assert 60_965_224 + extra == 62_378_344 and round(100 * extra / 60_965_224, 1) == 2.3

# %% [markdown]
# So the single-tower network has 62,378,344 parameters: only 2.3 % more, because fc6 dominates the count.
# (You can confirm it with `AlexNet(groups=1).num_parameters()`, which builds the whole network.) The paper
# reports that the two-GPU scheme lowers the top-1 and top-5 error rates by 1.7 % and 1.2 % compared with a
# net with *half as many kernels in each convolutional layer* trained on one GPU. Note the comparison: not
# against the one-tower network with the same number of kernels (which did not fit on one GPU), but against a
# net half as wide.
#
# ### The LRN window and the two GPUs
#
# Response normalization (§3.3, notebook 05) divides each map by the activity of its neighbours *across maps*: a
# window of $n = 5$ adjacent kernel maps. On the paper's two GPUs each GPU holds half of the maps and normalizes
# its own: a window never reaches from the last maps of GPU 1 into the first maps of GPU 2. `nn.LocalResponseNorm`
# reproduces that with `groups=2` (the window is clipped at the edge of each half, as it is at the edges of the
# stack), and `AlexNet(groups=2)` uses it after conv1 and conv2 by default. Caffe's single-GPU BVLC AlexNet (and so
# the ONNX model zoo's copy) normalizes across all 96 or 256 maps instead: `AlexNet(lrn_groups=1)`, or
# `python -m alexnet train --lrn-across-towers`. The two differ only for the maps within two of the boundary:

# %%
print("two towers (the paper):", model.norm1)
print("one window (Caffe):    ", nn.LocalResponseNorm(groups=1))
a = np.abs(rng.normal(size=(1, 96, 1, 1))) * 30
changed = np.flatnonzero(~np.isclose(nn.LocalResponseNorm(groups=2).forward(a), nn.LocalResponseNorm().forward(a)))
print("maps whose output differs between the two:", changed.tolist())
assert model.norm1.groups == model.norm2.groups == 2 and changed.tolist() == [46, 47, 48, 49]

# %% [markdown]
# Grouping has a visible side effect, which notebook 10 and Figure 3 of the paper show: conv1's 96 kernels
# feed conv2's two groups 48 each, and the two halves specialise differently (the paper's GPU 1 learned
# largely colour-agnostic kernels, GPU 2 largely colour-specific ones).

# %% [markdown]
# ## 5 · One image through the network
#
# The table in section 1 was computed from arithmetic. Let's make sure the real forward pass agrees, on a real
# photograph, layer by layer. To keep this fast on a CPU we use a network with every width divided by 8
# (`width=1/8`: 12 kernels in conv1, 512 units in fc6 and fc7); the spatial sizes do not depend on the width.
# The input is prepared as in §2 (shorter side to 256, centre crop to 227, mean subtracted; here, lacking a
# training set, we subtract the image's own per-channel mean).

# %%
from _helpers import sample_photos          # looks in $ALEXNET_DATA, then ../../shared/data (see notebook 09)
samples = sample_photos()
if samples:
    photo = next((p for p in samples if "tabby" in p.name), samples[0])
    image = data.load_image_square(photo, 256)
    print("photograph:", photo.name)
else:   # no ImageNet photographs here (see notebook 09 for how to get Imagenette): a synthetic image
    yy, xx = np.mgrid[0:256, 0:256]
    image = np.stack([xx, yy, 255 - xx], -1).astype(np.uint8)
    print("no photographs found - using a synthetic gradient image")
x = data.center_crop_batch(image[None], None, 227)
x -= x.mean(axis=(2, 3), keepdims=True)
print("input:", x.shape, x.dtype)

small = AlexNet(num_classes=1000, crop=227, width=1 / 8, seed=0).eval()
assert small.conv1.weight.shape[0] == 12 and small.fc6.weight.shape[0] == small.fc7.weight.shape[0] == 512
expected = {r.name: r.output_shape for r in layer_rows(small)}
h = x
for name, layer in small.named_children():
    h = layer(h)
    ok = tuple(h.shape[1:]) == expected[name]
    print(f"{name:<8}{type(layer).__name__:<18}{str(tuple(h.shape)):<22}{'ok' if ok else 'MISMATCH'}")
    assert ok, name

# %% [markdown]
# ## 6 · A gradient check of the whole network
#
# Every layer in `nn` has a hand-written backward pass. Each is checked on its own in the layer notebooks, but
# a network can still go wrong in how the layers are chained. The cure is the same **gradient check**, on the
# whole network with its loss: for a tiny AlexNet-shaped network (width 1/16, crop 67, 5 classes, two
# images) compare the gradients from backpropagation with central differences of the loss $L$,
#
# $$ \frac{\partial L}{\partial \theta_i} \approx \frac{L(\theta + \varepsilon e_i) - L(\theta - \varepsilon e_i)}{2\varepsilon},
# \qquad \text{rel. error} = \frac{\lVert g_{\text{backprop}} - g_{\text{numeric}} \rVert}{\max(\lVert g_{\text{backprop}}\rVert, \lVert g_{\text{numeric}}\rVert)} ,$$
#
# in float64, for every parameter tensor and the input. Small tensors are checked entry by entry, large ones
# along random directions $d$ (where $\langle \nabla L, d\rangle = \frac{d}{dt} L(\theta + t d)$ exactly).
# `nn.gradcheck.check_module` does this, resetting dropout's random generator before every evaluation so
# that all of them see the same mask. It is the same network in every respect but width: grouped conv2,
# conv4 and conv5, LRN, overlapping pooling, dropout.

# %%
from nn.gradcheck import check_module

rng = np.random.default_rng(0)
tiny = AlexNet(num_classes=5, crop=67, width=1 / 16, init="kaiming", seed=0)
print("sizes:", spatial_sizes(67), f"- {tiny.num_parameters():,} parameters")
x = rng.normal(size=(2, 3, 67, 67))
labels = rng.integers(0, 5, size=2)
t0 = time.perf_counter()
result = check_module(tiny, x, loss=nn.SoftmaxCrossEntropyLoss(), labels=labels,
                      max_elements=16, directions=4)
print(result)
print(f"({time.perf_counter() - t0:.1f} s)")
assert result.passed and len(tiny.children()) == 23
errors = {t.name: t.error for t in result.tensors}
assert 1e-7 < errors["input"] < 2e-7 and max(e for name, e in errors.items() if name != "input") < 1e-8   # the text below
assert spatial_sizes(67)["pool5"] == 1 and spatial_sizes(66)["pool5"] == 0          # "the smallest crop is 67"
print(f"\nthis notebook ran in {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# Every relative error is below the tolerance $10^{-6}$: the backward pass is the derivative of the forward pass,
# through all 23 layers (a wrong derivative gives errors near 1, a small missing term $10^{-6}$ to $10^{-3}$). The
# parameters' errors are all below $10^{-8}$; the input's, between $10^{-7}$ and $2 \times 10^{-7}$, is the largest,
# just above the $10^{-7}$ under which notebook 11's rule of thumb calls a gradient plainly correct, and well under the
# tolerance. (The smallest crop is 67 because that is the smallest input that still leaves a
# 1 × 1 map after pool5.) `python -m alexnet.gradcheck` runs the same check, plus every layer on its own, from the
# command line.

# %% [markdown]
# ## Exercise (graded): count a convolution's parameters
#
# Write `conv_parameters(in_channels, out_channels, kernel, groups)`: the number of weights and biases of a
# convolution with `out_channels` kernels of size `kernel`×`kernel` whose inputs are split into `groups` blocks
# (so each kernel sees `in_channels / groups` channels). Return an integer. The grader compares your count with
# `nn.Conv2d` for the five convolutions of the two-group AlexNet, the same with one tower (`groups=1`), and three
# small convolutions with 3 and 4 groups and a 1×1 kernel; each count must be exact.

# %%
# EXERCISE: conv-parameters
def conv_parameters(in_channels, out_channels, kernel, groups):
    raise NotImplementedError        # weights: out_channels kernels of (in_channels / groups) x kernel x kernel


# %%
from graders import grade, nb01          # the checks are in tutorials/graders/nb01.py
grade("conv-parameters", nb01.conv_parameters, conv_parameters)


# %% [markdown]
# ## Exercises
#
# 1. **Neurons.** The paper speaks of "650,000 neurons". Using `layer_rows(model)`, sum the number of outputs
#    of the eight learned layers and compare with the summary's 659,272. Which layer contributes the most?
#    How would the count change at 224?
# 2. **Where does the memory go?** In float32, how many megabytes do the weights take? Now count the
#    activations that backpropagation must keep for a batch of 128 (every layer's output, from the
#    summary's shapes). Which is larger, and what does that say about why the paper needed two 3 GB GPUs?
# 3. **Groups everywhere?** Suppose conv3 were grouped as well (`groups=2`), so the two GPUs exchanged data only
#    before fc6. How many parameters and MACs would that save? Build the layer with `nn.Conv2d` to check your
#    answer, and think about what the network could no longer compute.
