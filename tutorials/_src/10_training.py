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
# # 10 · Training AlexNet (on a very small scale)
#
# Everything is in place: the layers (`nn`), the network (`alexnet.AlexNet`, notebook 01) and the data
# pipeline (`data`, notebook 09). This notebook trains AlexNet end to end and then looks at what it learned the
# way §6.1 of the paper does: the first-layer kernels (Figure 3), the top-5 predictions (Figure 4, left) and the
# training images nearest to a test image in the network's feature space (Figure 4, right).
#
# **Please calibrate your expectations.** The paper trained for five to six days on two GPUs, about 90 passes
# over 1.2 million images. This notebook must run in about half a minute on a laptop CPU, so it trains a network
# one eighth as wide, on 200 small images of five classes, for about a hundred SGD steps. That is enough to
# watch every mechanism work (the loss falls, the weights move, the features start to mean something) and to
# learn how to read these figures, but **not** enough to say anything about AlexNet's accuracy. For real numbers,
# run the reduced-scale recipe from `docs/alexnet.md` (Imagenette, 128-pixel images, ~1 hour on a GPU):
#
# ```bash
# python -m alexnet train --data imagenette --image-size 128 --crop 112 --init kaiming \
#     --input-scale 64 --epochs 30 --out runs/imagenette --device cuda
# ```

# %%
import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import sys, pathlib, tempfile, time, copy
sys.path.insert(0, str(pathlib.Path.cwd().parent))   # the repository root, so that `import nn` works

import numpy as np
import matplotlib.pyplot as plt

import nn
import data
from alexnet import AlexNet
from alexnet.metrics import RunningStats
from alexnet.visualize import kernel_tiles, kernel_mosaic, fc7_features, nearest_neighbours
from alexnet.predict import predict_probs, top_k
from alexnet.checkpoint import save_checkpoint, load_checkpoint
from _helpers import find_dataset     # where the photographs are (a helper beside these notebooks)

# %matplotlib inline
# %config InlineBackend.figure_formats = ["jpeg"]   # photographs: JPEG keeps the saved notebook small
# %config InlineBackend.print_figure_kwargs = {"bbox_inches": "tight", "pil_kwargs": {"quality": 85}}
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9})
notebook_start = time.perf_counter()

# %% [markdown]
# ## 1 · A small subset of ImageNet
#
# We use Imagenette (ten easy ImageNet classes) from `ALEXNET_DATA` or `../../shared/data`, and prepare five of
# its classes with `data.prepare_subset` exactly as in notebook 09 (§2: shorter side to $S$, central crop, mean
# image, RGB PCA), but with $S = 76$ instead of 256, so that the random $67 \times 67$ crops of §4.1 still have
# room to move. 67 is the smallest crop AlexNet accepts (pool5 is then $1 \times 1$).
#
# No data here? `python -m data download imagenette` fetches the public Imagenette, and `ALEXNET_DATA` tells
# the notebook where it is (see notebook 09). Without it the notebook falls back to synthetic images, so
# everything still runs; the figures are then about coloured blobs.

# %%
S, CROP = 76, 67
CLASSES = ["n01440764", "n02102040", "n03028079", "n03417042", "n03888257"]  # tench, springer, church, garbage truck, parachute
work = pathlib.Path(tempfile.mkdtemp(prefix="alexnet-10-"))

def make_synthetic(folder, per_class=40, val_per_class=8, seed=0):
    # Five classes of coloured discs on noisy backgrounds (each class its own colour), ImageNet layout.
    from PIL import Image
    rng = np.random.default_rng(seed)
    colours = [(220, 40, 40), (40, 180, 40), (40, 60, 220), (230, 200, 40), (200, 60, 200)]
    yy, xx = np.mgrid[0:96, 0:128]
    for c, wnid in enumerate(CLASSES):
        for split, count in (("train", per_class), ("val", val_per_class)):
            out = pathlib.Path(folder) / split / wnid
            out.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                img = rng.normal(120, 30, size=(96, 128, 3))
                cy, cx, r = rng.uniform(30, 66), rng.uniform(40, 88), rng.uniform(15, 28)
                img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colours[c]
                Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(out / f"{wnid}_{i}.JPEG")
    return pathlib.Path(folder)

source = find_dataset(inside=f"train/{CLASSES[0]}")   # Imagenette under $ALEXNET_DATA, ../../shared/data or the cache
if source is None:
    print("No Imagenette found: using SYNTHETIC images (see above for how to get the real ones).")
    source = make_synthetic(work / "synthetic")
print("source:", source)
prepared = data.prepare_subset(source, work / "prepared", classes=CLASSES, per_class=40, val_per_class=8,
                               size=S, workers=0, quiet=True)
train_set = data.PreparedDataset(prepared, "train")
val_set = data.PreparedDataset(prepared, "val")
print(train_set, "\n", val_set, sep="")
print("classes:", train_set.class_names)
MEASURED = source.name == "imagenette-224"          # the data the text's numbers were measured on
if source.name != "synthetic":
    assert (len(train_set), len(val_set), train_set.num_classes) == (200, 40, 5)

# %% [markdown]
# ## 2 · The network, and one gradient check before we trust it
#
# `AlexNet(width=1/8)` keeps every layer of §3.5 (grouped convolutions, LRN, overlapping pooling, dropout
# 0.5 in fc6 and fc7) but divides every channel count and the fully connected widths by 8: 12 kernels in conv1,
# 512 units in fc6 and fc7, fc8 with our 5 classes.
#
# **Initialization and input scale.** The paper draws all weights from $\mathcal N(0, 0.01^2)$ (§5) and feeds
# mean-centred pixels in $0 \ldots 255$. That works at full scale but is famously slow to get going; on a
# small budget we use He initialization ($\mathcal N(0, 2/\text{fan-in})$, zero biases), which keeps the size of
# the activations constant from layer to layer *if* the input has unit scale. So we divide the centred pixels by
# 64 (`input_scale=64`, about their standard deviation). This is the project's reduced-scale recipe.
#
# Before spending compute on a network, check its gradients. This takes a second on a network with the same
# structure and an even smaller width:

# %%
from nn.gradcheck import check_module
rng = np.random.default_rng(0)
probe = AlexNet(num_classes=5, crop=CROP, width=1 / 16, init="kaiming", seed=0)
result = check_module(probe, rng.normal(size=(2, 3, CROP, CROP)), loss=nn.SoftmaxCrossEntropyLoss(),
                      labels=np.array([0, 3]), max_elements=16, directions=3)
print(f"end-to-end gradient check: max relative error {result.max_error:.1e} -> {'PASS' if result.passed else 'FAIL'}")
assert result.passed

model = AlexNet(num_classes=train_set.num_classes, crop=CROP, width=1 / 8, init="kaiming", seed=0)
initial_conv1 = model.conv1.weight.data.copy()
print(f"training network: {model.num_parameters():,} parameters (the full one has 60,965,224)")
assert model.conv1.weight.shape[0] == 12 and model.fc6.weight.shape[0] == model.fc7.weight.shape[0] == 512

# %% [markdown]
# ## 3 · The training loop (§5)
#
# One SGD step on a batch $D_i$ of random crops, reflections and PCA lighting (§4.1) is:
#
# 1. **forward**: logits $z = f(x; w)$ for the batch;
# 2. **loss**: the average softmax cross-entropy $L = -\frac{1}{|D_i|}\sum \log \operatorname{softmax}(z)_{y}$
#    (the "multinomial logistic regression objective" of §3.5);
# 3. **backward**: $\partial L / \partial w$ for every weight, accumulated into `Parameter.grad`;
# 4. **update** (§5, with $\varepsilon$ the learning rate):
#    $$ v_{i+1} = 0.9\, v_i - 0.0005\, \varepsilon\, w_i - \varepsilon \left\langle \frac{\partial L}{\partial w} \right\rangle_{D_i},
#       \qquad w_{i+1} = w_i + v_{i+1}. $$
#
# After each epoch we measure the loss and the top-1 / top-5 error on the validation images, using the centre
# crop (no augmentation, dropout off: `model.eval()`). `python -m alexnet train` runs this same loop and adds
# what a long run needs: the learning-rate schedule of §5 (divide by 10 when the validation error stalls),
# checkpoints after every epoch and on Ctrl-C, exact resumption, and a log.
#
# The loader applies all of §4.1's training augmentation, PCA lighting included (with the paper's
# $\sigma = 0.1$, in the $[0, 1]$ intensity convention explained in notebook 09, section 4).

# %%
BATCH, EPOCHS, LR = 25, 15, 0.01
loader = data.Loader(train_set, BATCH, crop=CROP, train=True, seed=0, input_scale=64, lighting_std=0.1)
val_loader = data.Loader(val_set, 40, crop=CROP, train=False, input_scale=64)
criterion = nn.SoftmaxCrossEntropyLoss()
optimizer = nn.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)

def evaluate(model, loader):
    model.eval()
    stats = RunningStats()
    for x, y in loader:
        logits = model.forward(x)
        stats.update(criterion.forward(logits, y), logits, y)
    model.train()
    return stats

history, step_losses = [], []
v0 = evaluate(model, val_loader)
history.append({"epoch": 0, "train_loss": np.nan, "val_loss": v0.loss, "val_top1": v0.top1_error, "val_top5": v0.top5_error})
t0 = time.perf_counter()
for epoch in range(1, EPOCHS + 1):
    model.train()
    train_stats = RunningStats()
    for x, y in loader:                              # one epoch (the loader advances its epoch itself)
        logits = model.forward(x)                    # 1. forward
        loss = criterion.forward(logits, y)          # 2. loss
        if not np.isfinite(loss):                    # diverged: stop, as `python -m alexnet train` does
            raise RuntimeError(f"the loss became {loss} in epoch {epoch}: try a smaller learning rate")
        optimizer.zero_grad()
        model.backward(criterion.backward())         # 3. backward
        optimizer.step()                             # 4. SGD with momentum and weight decay
        train_stats.update(loss, logits, y)
        step_losses.append(loss)
    val = evaluate(model, val_loader)
    history.append({"epoch": epoch, "train_loss": train_stats.loss, "val_loss": val.loss,
                    "val_top1": val.top1_error, "val_top5": val.top5_error})
    print(f"epoch {epoch}: train loss {train_stats.loss:.3f}, top-1 err {train_stats.top1_error:5.1%} | "
          f"val loss {val.loss:.3f}, top-1 err {val.top1_error:5.1%}, top-5 err {val.top5_error:5.1%}")
train_seconds = time.perf_counter() - t0
print(f"{len(step_losses)} SGD steps in {train_seconds:.1f} s; chance level: loss ln 5 = {np.log(5):.3f}, top-1 error 80%")
assert len(step_losses) == 120 and all(h["val_top5"] == 0 for h in history)       # five classes: top-5 is always right
assert round(np.log(5), 2) == 1.61 and 1 / len(val_set) == 0.025

# %% [markdown]
# ### The learning curve

# %%
steps_per_epoch = len(loader)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
axes[0].plot(np.arange(1, len(step_losses) + 1) / steps_per_epoch, step_losses, color="tab:blue", alpha=0.35,
             label="train, each batch")
axes[0].plot([h["epoch"] for h in history[1:]], [h["train_loss"] for h in history[1:]], "o-", color="tab:blue",
             label="train, epoch average")
axes[0].plot([h["epoch"] for h in history], [h["val_loss"] for h in history], "o-", color="tab:orange", label="validation")
axes[0].axhline(np.log(5), color="gray", ls=":", label="chance (ln 5)")
axes[0].set(xlabel="epoch", ylabel="cross-entropy loss", title="loss"); axes[0].legend(fontsize=8)
axes[1].plot([h["epoch"] for h in history], [100 * h["val_top1"] for h in history], "o-", color="tab:orange", label="val top-1")
axes[1].axhline(80, color="gray", ls=":", label="chance top-1")
axes[1].set(xlabel="epoch", ylabel="error (%)", title="validation top-1 error", ylim=(0, 100)); axes[1].legend(fontsize=8)
for ax in axes: ax.grid(alpha=0.3)
plt.tight_layout(); plt.show()

# the last epoch's validation loss, image by image
model.eval()
per_image = np.concatenate([-np.log(nn.softmax(model.forward(x).astype(np.float64))[np.arange(len(y)), y])
                            for x, y in val_loader])
model.train()
worst = np.sort(per_image)[::-1][:4]
last, best_loss = history[-1], min(h["val_loss"] for h in history)
print(f"last epoch: validation loss {per_image.mean():.3f} (lowest of the run {best_loss:.3f}), top-1 error "
      f"{last['val_top1']:.1%}; its 4 worst images of {len(per_image)}: losses {np.round(worst, 2)}, "
      f"{worst.sum() / per_image.sum():.0%} of the total; the other {len(per_image) - 4} average "
      f"{np.sort(per_image)[:-4].mean():.3f}")
assert abs(per_image.mean() - last["val_loss"]) < 1e-3
SHARE_OF_WORST = worst.sum() / per_image.sum()
assert not MEASURED or (round(last["val_loss"], 3), round(best_loss, 3), last["val_top1"]) == (1.602, 1.246, 0.525)
assert not MEASURED or last["val_top1"] == min(h["val_top1"] for h in history) and SHARE_OF_WORST > 0.4

# %% [markdown]
# How to read it. The per-batch training loss is noisy (each batch is a different random sample, with random
# crops, flips, lighting and dropout masks), so look at its trend. With five classes, a network that knows nothing
# has loss $\ln 5 \approx 1.61$ and 80 % top-1 error; anything clearly below is learning. The very first
# steps typically *overshoot* above $\ln 5$ (a freshly initialized network is confidently wrong about some
# images, and the first large gradients with momentum push it around) before the loss settles and falls. With only 40 validation
# images, one image is 2.5 percentage points, so small wiggles in the validation error mean nothing.
#
# The last epoch shows how little 40 images measure. Its validation loss, 1.602, is back at the chance level
# $\ln 5$, up from 1.246 at its lowest, while its top-1 error, 52.5 %, is as low as at any epoch: the mean of 40
# cross-entropies is ruled by the few images the network is confidently wrong about: the line printed under the
# curves shows that its 4 worst images carry more than 40 % of the total. The last epoch's steps made a handful of
# wrong answers much more confident without raising the error. A single epoch's validation loss is a noisy signal
# at this size; the trend over several epochs, and the error, are what to read. Note also
# that **top-5 error is 0 by definition** with five classes, which is why we plot top-1; on ImageNet's 1000
# classes top-5 is the paper's headline number.
#
# ### Inside the network: the paper's initialization against He's
#
# Why He initialization and `input_scale=64` rather than the paper's $\mathcal N(0, 0.01^2)$ weights on raw centred
# pixels? Train the same network the paper's way for the same 120 steps, and look inside both, at initialization and
# after training: for every learned layer, the histogram of its outputs (activations) and of the gradient arriving
# at them, on one training batch. The histograms are of $\log_{10}|\text{value}|$, so one unit on the axis is a factor
# of ten. (The measuring and plotting code is in `_helpers.py`: `layer_signals`, `plot_signal_histograms`.)

# %%
import _helpers

def train_copy(init, input_scale, steps=len(step_losses)):
    # the same loop as above, for another initialization and input scale; returns (model at init, trained model)
    net = AlexNet(num_classes=train_set.num_classes, crop=CROP, width=1 / 8, init=init, seed=0)
    at_init = copy.deepcopy(net)
    opt = nn.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=5e-4)
    batches = data.Loader(train_set, BATCH, crop=CROP, train=True, seed=0, input_scale=input_scale, lighting_std=0.1)
    losses = []
    while len(losses) < steps:
        for x, y in batches:
            losses.append(criterion.forward(net.forward(x), y))
            opt.zero_grad(); net.backward(criterion.backward()); opt.step()
            if len(losses) == steps:
                break
    return at_init, net, np.array(losses)

paper_init, paper_trained, paper_losses = train_copy("paper", input_scale=1.0)
he_init = AlexNet(num_classes=train_set.num_classes, crop=CROP, width=1 / 8, init="kaiming", seed=0)
probe_batch = {scale: next(iter(data.Loader(train_set, 50, crop=CROP, train=True, seed=1, input_scale=scale)))
               for scale in (1.0, 64.0)}
signals = {"paper, at init": _helpers.layer_signals(paper_init, *probe_batch[1.0], criterion),
           "paper, trained": _helpers.layer_signals(paper_trained, *probe_batch[1.0], criterion),
           "He, at init": _helpers.layer_signals(he_init, *probe_batch[64.0], criterion),
           "He, trained": _helpers.layer_signals(model, *probe_batch[64.0], criterion)}
learned = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
_helpers.plot_signal_histograms(signals, learned, "blue: the paper's N(0, 0.01^2) on raw pixels; red: He on pixels / 64; "
                                "dashed: at initialization, solid: after 120 steps")
std = {run: {name: (float(np.std(a)), float(np.std(g))) for name, (a, g) in sig.items()} for run, sig in signals.items()}
print(f"{'':16}" + "".join(f"{name:>10}" for name in learned))
for run in signals:
    print(f"{run:16}" + "".join(f"{std[run][name][0]:10.1e}" for name in learned) + "   activation std")
for run in signals:
    print(f"{run:16}" + "".join(f"{std[run][name][1]:10.1e}" for name in learned) + "   gradient std")
print(f"training loss over the last 16 steps: paper {paper_losses[-16:].mean():.3f}, He {np.mean(step_losses[-16:]):.3f}"
      f"  (ln 5 = {np.log(5):.3f})")
# the findings below, as measured
paper_grad = [std["paper, at init"][name][1] for name in learned]
he_grad = [std["He, at init"][name][1] for name in learned]
shrink = [upper / lower for lower, upper in zip(paper_grad, paper_grad[1:])]
print("paper's init: the gradient's std shrinks from each layer to the one below by",
      ", ".join(f"{upper}->{lower} {factor:.1f}" for lower, upper, factor in zip(learned, learned[1:], shrink)))
assert not MEASURED or 2.5 < min(shrink) < 3.5 and 28 < max(shrink) < 36              # "between 3 and 32"
assert not MEASURED or std["He, at init"]["conv1"][1] / std["paper, at init"]["conv1"][1] > 1e5        # "a million times smaller"
assert not MEASURED or all(upper / lower > 2.5 for lower, upper in zip(paper_grad, paper_grad[1:]))    # shrinks at every layer
assert not MEASURED or max(he_grad) / min(he_grad) < 100                                                # He: within two decades
assert not MEASURED or std["paper, at init"]["conv4"][0] < 0.02 and std["He, at init"]["conv4"][0] / std["paper, at init"]["conv4"][0] > 20
assert not MEASURED or 5 < std["paper, at init"]["conv1"][0] < 20 and min(std["He, at init"][name][0] for name in learned) > 0.3
assert not MEASURED or abs(paper_losses[-16:].mean() - np.log(5)) < 0.05 and np.mean(step_losses[-16:]) < np.log(5) - 0.2

# %% [markdown]
# What the histograms show (the table gives their standard deviations; the cell checks these findings on the
# project's `imagenette-224` photographs):
#
# * **With the paper's initialization the gradient dies on the way down.** The gradient at fc8's output has the same
#   size in both networks (it is $(p - \text{onehot})/N$ either way), but every backward pass through a layer with
#   weights of standard deviation 0.01 multiplies it by a factor well below 1: it shrinks at every layer, by a
#   factor between about 3 and 32 (printed under the table), and reaches conv1 about a million times smaller than
#   with He's initialization. The
#   first layers' weights then move by nothing measurable, and the blue solid curves (after 120 steps) lie on the
#   dashed ones (at initialization).
# * **The activations lose the image.** Raw pixels give conv1 outputs of size ten or so; after three more layers of
#   0.01 weights, conv4's outputs are its bias of 1 (§5: biases 1 in conv2, conv4, conv5, fc6, fc7) plus a variation
#   that depends on the image, with a standard deviation about 0.01, tens of times smaller than in the He network:
#   the sharp spike at $10^0$ in the histogram. The ReLUs stay active thanks to the biases, as §5 intended, but what
#   they pass on says little about the input. The training loss stays at $\ln 5$: the network stalls.
# * **He's initialization keeps every layer in the same range.** Weights of standard deviation
#   $\sqrt{2/\text{fan-in}}$ preserve the scale of the signal through a ReLU layer, forwards and backwards, so
#   activations and gradients stay within about two decades of each other across all eight layers, and the loss
#   falls well below $\ln 5$ in the same 120 steps.
#
# This is a statement about *this* scale: a network an eighth as wide has fan-ins eight times smaller, so each
# 0.01-weight layer shrinks the signal more than in the paper's network, and 120 steps leave no time to recover.
# The paper's run took 90 epochs of 1.2 million images; at our scale the paper's initialization is simply too small.
#
# The checkpoint format of `python -m alexnet train` stores the weights, the configuration, the class names and
# the training mean image, which is everything `python -m alexnet predict` needs to classify a new photograph.

# %%
checkpoint_path = work / "tiny.npz"
save_checkpoint(checkpoint_path, model, {"class_names": train_set.class_names, "image_size": S,
                                         "args": {"input_scale": 64.0}},
                optimizer=optimizer, mean_image=train_set.mean_image)
restored = load_checkpoint(checkpoint_path).build_model().eval()
x_val = data.center_crop_batch(val_set.images, train_set.mean_image, CROP, input_scale=64)
same = np.array_equal(predict_probs(model, x_val), predict_probs(restored, x_val))
print(f"{checkpoint_path.name}: {checkpoint_path.stat().st_size / 1e6:.1f} MB; restored model gives identical predictions: {same}")
print(f"from a shell:  python -m alexnet predict --checkpoint {checkpoint_path.name} photo.jpg --figure top5.png")

# %% [markdown]
# ## 5 · Figure 3: the first-layer kernels
#
# Each conv1 kernel is an $11 \times 11 \times 3$ array of weights, so it can be drawn as a small colour image
# (each one stretched to the full 0-1 range on its own, with `alexnet.visualize.kernel_tiles`). In the trained
# AlexNet these become oriented edges, gratings and colour blobs, and because of the two groups (notebook 01),
# the two halves specialise: "the kernels on GPU 1 are largely color-agnostic, while the kernels on GPU 2 are
# largely color-specific". Our 12 kernels after 120 steps are still mostly their random initial values (they moved
# by well under half of their size, printed below):
# the right-hand panel shows **what training changed** (the difference from the initial weights), which already
# has more structure than the noise it started from. Run the reduced recipe for an hour and draw them with
# `python -m alexnet visualize --checkpoint runs/imagenette/best.npz` to see real edge detectors appear.

# %%
after = np.asarray(model.conv1.weight.data)
fig, axes = plt.subplots(2, 3, figsize=(11, 3.6))
for col, (title, w) in enumerate([("at initialization", initial_conv1), ("after training", after),
                                  ("change (after - initial)", after - initial_conv1)]):
    tiles = kernel_tiles(w)                                   # (F, 11, 11, 3), each scaled to [0, 1]
    for row, half in enumerate(np.split(tiles, 2)):           # group 1 ("GPU 1") and group 2 ("GPU 2")
        axes[row, col].imshow(kernel_mosaic(half, columns=6), interpolation="nearest")
        axes[row, col].set_title(f"{title}: group {row + 1}", fontsize=8)
        axes[row, col].axis("off")
plt.suptitle(f"conv1: {after.shape[0]} kernels of 11x11x3, split by group (cf. Figure 3)"); plt.tight_layout(); plt.show()
moved = np.linalg.norm(after - initial_conv1) / np.linalg.norm(initial_conv1)
print(f"relative change of conv1's weights: {moved:.1%}")
assert moved < 0.5

# %% [markdown]
# ## 6 · Figure 4 (left): top-5 predictions
#
# For a validation image, take the centre crop, subtract the *training* mean image, run the network in eval
# mode, and apply the softmax: the five largest probabilities are the network's top-5 guesses. The paper's
# figure shows eight test images with their five labels as bars, the correct one in red. Here the same with
# `alexnet.predict.predict_probs` and `top_k` (with five classes, the top 5 is the whole distribution):

# %%
probs = predict_probs(model, x_val)
picks = [int(np.flatnonzero(val_set.labels == c)[0]) for c in range(val_set.num_classes)][:4]
picks += [int(i) for i in np.argsort(-probs.max(1)) if i not in picks][:8 - len(picks)]
_helpers.plot_top5(val_set.images, val_set.labels, probs, val_set.class_names, picks, top_k)   # code in _helpers.py

# %% [markdown]
# Don't read much into individual bars after a few seconds of training. Most distributions are still spread
# out; the confident predictions are the easy cases, where a cue as crude as the overall colour gives the
# answer away (a parachute is a small thing in a large blue sky). The first four images are the first validation
# image of four classes; the others are the images the network is most sure about.

# %% [markdown]
# ## 7 · Figure 4 (right): nearest neighbours in fc7 space
#
# The most striking figure of the paper asks what the network considers *similar*. Take the 4096-dimensional
# activity of the last hidden layer (fc7, after its ReLU) for a test image and for every training image, and
# show the training images at the smallest Euclidean distance
# $\lVert \phi(a) - \phi(b) \rVert_2$. In the trained AlexNet the neighbours of an elephant are elephants in
# other poses and colours, which pixel-space distance would never find. `AlexNet.fc7_features` computes
# $\phi$ (512-dimensional here), and `alexnet.visualize.nearest_neighbours` does the search with
# $\lVert a - b\rVert^2 = \lVert a\rVert^2 - 2a\cdot b + \lVert b\rVert^2$. For comparison, the last column
# of each row shows the nearest training image in raw **pixel** space.

# %%
train_idx = np.arange(len(train_set))
queries = np.array([int(np.flatnonzero(val_set.labels == c)[1]) for c in range(min(4, val_set.num_classes))])
f_train = fc7_features(model, train_set, CROP, 64.0, train_idx)
f_query = fc7_features(model, val_set, CROP, 64.0, queries)
print("fc7 features:", f_train.shape, f_query.shape)
order, dist = nearest_neighbours(f_query, f_train, k=5)
pix_train = train_set.images.reshape(len(train_set), -1).astype(np.float32)
pix_query = val_set.images[queries].reshape(len(queries), -1).astype(np.float32)
pix_order, _ = nearest_neighbours(pix_query, pix_train, k=1)

fig, axes = plt.subplots(len(queries), 7, figsize=(10.5, 1.65 * len(queries)))
for r, q in enumerate(queries):
    cells = [(val_set.images[q], f"query: {val_set.class_names[val_set.labels[q]][:12]}", "tab:red")]
    cells += [(train_set.images[t], train_set.class_names[train_set.labels[t]][:12], "black") for t in order[r]]
    t = pix_order[r, 0]
    cells += [(train_set.images[t], f"pixels: {train_set.class_names[train_set.labels[t]][:10]}", "gray")]
    for c, (im, title, colour) in enumerate(cells):
        axes[r, c].imshow(im); axes[r, c].set_title(title, fontsize=7, color=colour); axes[r, c].axis("off")
plt.suptitle("validation image, its 5 nearest training images by fc7 features, and the nearest by raw pixels")
plt.tight_layout(); plt.show()
same_class = (train_set.labels[order] == val_set.labels[queries][:, None]).mean()
print(f"fraction of fc7 neighbours with the query's class: {same_class:.0%} (chance: 20%)")
print(f"\ntraining took {train_seconds:.0f} s; the whole notebook {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# ## 8 · Leaving the project as ONNX, and the real AlexNet's weights coming in
#
# ONNX is the format other tools read: ONNX Runtime runs it, Netron draws it. `alexnet.onnx_io` writes our network
# as standard operators (Conv with `group=2`, LRN, MaxPool, Gemm) and reads such a file back into our own layers.
# Two conventions differ and are converted: ONNX's LRN divides $\alpha$ by the window size $n$ (as Caffe does), and
# it has no groups, so a window that stays inside each tower is written as Split, two LRNs, Concat.
#
# The check that matters is an *independent* runtime: ONNX Runtime knows nothing of our im2col or our LRN, so when
# its logits agree with ours to float32 rounding, both implementations compute the same network. (The cell is
# skipped when `onnx` and `onnxruntime` are not installed: `pip install -e ".[onnx]"`.)

# %%
try:
    import onnxruntime
    from alexnet.onnx_io import export_checkpoint, import_onnx
except ImportError:
    onnxruntime = None
    print("onnx / onnxruntime not installed (pip install -e '.[onnx]'): skipping the ONNX round trip")
if onnxruntime is not None:
    onnx_path = work / "tiny.onnx"
    export_checkpoint(checkpoint_path, onnx_path)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": np.asarray(x_val, np.float32)})[0]
    ours = restored.forward(x_val)
    onnx_gap = np.abs(theirs - ours).max() / np.abs(ours).max()
    print(f"ONNX Runtime vs our layers on {len(x_val)} photographs: largest difference {onnx_gap:.1e} of the largest "
          f"logit; same top-1 class for {np.mean(theirs.argmax(1) == ours.argmax(1)):.0%}")
    assert onnx_gap < 1e-4, "ONNX Runtime disagrees with our layers"
    reimported, spec, _, _ = import_onnx(onnx_path, quiet=True)   # and back into our own AlexNet
    print("re-imported:", spec.describe())
    print("re-imported model gives the same logits:", np.allclose(reimported.eval().forward(x_val), ours, atol=1e-5))

# %% [markdown]
# A network trained at full scale is public: Caffe's BVLC AlexNet, `bvlcalexnet-12.onnx` (233 MB) in the ONNX Model
# Zoo (github.com/onnx/models, folder `validated/vision/classification/alexnet/model`). It has the paper's
# structure, with two differences the importer reports: its LRN uses $k = 1$ (the paper's is 2) and normalizes across
# both towers' maps (`AlexNet(lrn_groups=1)`), and it was trained on BGR pixels minus a mean *pixel*, so the imported
# checkpoint records that preprocessing and `predict` applies it. Caffe's 224 x 224 input with rounded-up pooling is
# our 227 x 227. Download the file into this folder (or set `ALEXNET_ZOO_ONNX` to its path) and the next cell sends a
# photograph through *our* im2col, LRN and pooling with the real weights, and draws conv1's 96 real kernels:
# Figure 3 of the paper, from the weights themselves. Without the file it says so and does nothing.

# %%
zoo_file = pathlib.Path(os.environ.get("ALEXNET_ZOO_ONNX", "bvlcalexnet-12.onnx"))
if onnxruntime is None or not zoo_file.is_file():
    print(f"{zoo_file} not found (or onnx not installed): download bvlcalexnet-12.onnx to run this cell")
else:
    from IPython.display import Image, display
    from alexnet.predict import preprocess, top_k
    from alexnet.visualize import draw_conv1_kernels

    zoo_model, zoo_spec, zoo_meta, _ = import_onnx(zoo_file)       # prints what it inferred and assumed
    print("input:", zoo_spec.describe())
    photos = [p for p in _helpers.sample_photos() if "tabby" in p.name][:1]
    if photos:
        _, x_photo = preprocess(photos, zoo_spec.image_size, zoo_spec.mean_image_rgb(), zoo_spec.crop,
                                zoo_spec.input_scale, zoo_spec.channel_order)
        for name, p in top_k(predict_probs(zoo_model, x_photo)[0], zoo_meta["class_names"], 5):
            print(f"{100 * p:6.2f}%  {name}")
    draw_conv1_kernels(zoo_model, work / "conv1_kernels_bvlc.png", zoo_spec.channel_order)
    display(Image(str(work / "conv1_kernels_bvlc.png")))

# %% [markdown]
# ## What to take away
#
# * The whole of §5 is ten lines: forward, loss, backward, `optimizer.step()`, repeated over augmented batches,
#   with a validation pass per epoch.
# * The loss starting at $\ln(\text{classes})$ and falling below it is the first sign of life; a loss that stays
#   flat, or becomes `nan`, means a problem with the learning rate, the initialization or the input scale.
# * Figures 3 and 4 are diagnostic tools you can apply to any checkpoint: kernels show whether the first layer
#   learned edges or noise; nearest neighbours show whether the features group images by meaning or just by
#   colour.

# %% [markdown]
# ## Exercise (graded): top-5 error
#
# §2 reports "the fraction of test images for which the correct label is not among the five labels considered
# most probable by the model". Write it for a batch of scores, as a fraction (not a percentage), leaving the scores
# as they are. The grader (`graders/nb10.py`) compares with `alexnet.metrics.topk_correct`, which the trainer uses,
# for $k$ from 1 to the number of classes, on batches of 300, 7 and 1 rows.

# %%
# EXERCISE: top-k-error
def top_k_error(scores, labels, k=5):
    """scores (N, K), labels (N,) -> the fraction of rows whose label is not among their k highest scores."""
    raise NotImplementedError


# %%
from graders import grade, nb10
grade("top-k-error", nb10.top_k_error, top_k_error, tolerance=1e-12)


# %% [markdown]
# ## Exercises
#
# 1. **The paper's initialization.** Re-run the training with `init="paper"` and `input_scale=1` (weights
#    $\mathcal N(0, 0.01^2)$, biases 1 in conv2, conv4, conv5, fc6, fc7; raw centred pixels). How does the
#    loss behave in the first epochs? Print the standard deviation of the activations after each layer for one
#    batch (iterate over `model.named_children()`) to see why.
# 2. **No augmentation.** Train once with `lighting_std=0` and `data.Loader(..., train=False)` for the
#    training set (centre crops only) and once as above, for the same number of steps and longer (say 30
#    epochs, a few minutes). Compare the gap between training and validation loss. Which run overfits first?
# 3. **Ten crops.** Evaluate the trained model with `data.Loader(val_set, 8, crop=CROP, train=False,
#    ten_crop=True, input_scale=64)`: average the softmax of the ten crops (reshape `(B, 10, 3, C, C)` to
#    `(10B, 3, C, C)`, run the network, reshape back, average over axis 1) and compare the top-1 error with the
#    centre crop's. What do you see here, and why is it hard to tell with 40
#    validation images?
