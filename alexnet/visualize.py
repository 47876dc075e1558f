"""What the network learned (§6.1): its first-layer kernels (Figure 3) and the
training images nearest to a few validation images in fc7 feature space (Figure 4, right).

Figure 3: "96 convolutional kernels of size 11 x 11 x 3 learned by the first
convolutional layer ... The top 48 kernels were learned on GPU 1 while the bottom
48 kernels were learned on GPU 2." Each kernel is shown as an RGB tile, normalised
to [0, 1] on its own. In the two-group network the first half of conv1's kernels
feeds conv2's first group (GPU 1) and the second half the second group (GPU 2),
so the halves are drawn as two separate blocks.

A network imported from a Caffe-trained ONNX file takes BGR input; its conv1 weights are
drawn with the channels reversed, so the tiles show the colours the kernels respond to.

Figure 4 (right): "If two images produce feature activation vectors with a small
Euclidean separation, we can say that the higher levels of the neural network
consider them to be similar." The features are fc7's 4096 outputs after its ReLU
(``AlexNet.fc7_features``), computed on the centre crop of every image.
"""

import sys
from pathlib import Path

import numpy as np

import data
from nn import asnumpy, check_device

from .checkpoint import load_checkpoint
from .datasets import check_crop, open_split, resolve_data
from .imagenet_classes import readable_names
from .preprocessing import checkpoint_spec, dataset_for
from .rundir import saving


def kernel_tiles(weight):
    """conv1 weights (F, 3, k, k) -> (F, k, k, 3) RGB tiles, each min-max normalised to [0, 1]."""
    w = np.asarray(weight, np.float64).transpose(0, 2, 3, 1)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    return (w - lo) / np.maximum(hi - lo, 1e-12)


def kernel_mosaic(tiles, columns=16, gap=1):
    """Tiles (N, k, k, 3) laid out in rows of ``columns`` with ``gap`` white pixels between."""
    n, k = tiles.shape[0], tiles.shape[1]
    rows = -(-n // columns)
    cols = min(columns, n)
    mosaic = np.ones((rows * (k + gap) - gap, cols * (k + gap) - gap, 3))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        mosaic[r * (k + gap) : r * (k + gap) + k, c * (k + gap) : c * (k + gap) + k] = tile
    return mosaic


def draw_conv1_kernels(model, path, channel_order="rgb"):
    """Figure 3: conv1's kernels as RGB tiles; with two groups, the two halves in two blocks.
    ``channel_order="bgr"``: the weights' input channels are B, G, R (a Caffe model); reversed."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    weight = asnumpy(model.conv1.weight.data)
    if channel_order == "bgr":
        weight = weight[:, ::-1]
    tiles = kernel_tiles(weight)
    blocks = np.split(tiles, 2) if model.groups == 2 else [tiles]
    labels = ["first half (GPU 1)", "second half (GPU 2)"] if model.groups == 2 else ["all kernels"]
    fig = Figure(figsize=(8, 1.9 * len(blocks) + 0.6))
    axes = fig.subplots(len(blocks), 1, squeeze=False)
    for ax, block, label in zip(axes[:, 0], blocks, labels):
        ax.imshow(kernel_mosaic(block), interpolation="nearest")
        ax.set_title(f"conv1 kernels {label}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{tiles.shape[0]} conv1 kernels of size {tiles.shape[1]}x{tiles.shape[2]}x3 (Figure 3)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    return path


def fc7_features(model, dataset, crop, input_scale, indices, batch_size=64, device="cpu", to_network=None):
    """fc7 features (len(indices) x 4096·width, NumPy float32) of the centre crops of ``indices``."""
    features = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        x = data.center_crop_batch(dataset.images, dataset.mean_image, crop, chunk, input_scale)
        if to_network is not None:
            x = to_network(x)
        if device != "cpu":
            from nn import to_device

            x = to_device(x, device)
        features.append(asnumpy(model.fc7_features(x)).astype(np.float32))
    return np.concatenate(features)


def nearest_neighbours(query_features, train_features, k=6):
    """Indices (Q x k) of the k training vectors nearest to each query in Euclidean distance,
    using ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2; and the distances."""
    q = query_features.astype(np.float64)
    t = train_features.astype(np.float64)
    d2 = (q * q).sum(1)[:, None] - 2 * q @ t.T + (t * t).sum(1)[None, :]
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return order, np.sqrt(np.maximum(np.take_along_axis(d2, order, axis=1), 0))


def draw_neighbours(val_set, train_set, queries, neighbours, path):
    """Figure 4 (right): each query (first column) and its nearest training images."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    k = neighbours.shape[1]
    fig = Figure(figsize=(1.6 * (k + 1), 1.8 * len(queries)))
    axes = fig.subplots(len(queries), k + 1, squeeze=False)
    val_names = readable_names(val_set.class_names, getattr(val_set, "wnids", None))
    train_names = readable_names(train_set.class_names, getattr(train_set, "wnids", None))
    for row, (q, nbrs) in enumerate(zip(queries, neighbours)):
        axes[row, 0].imshow(val_set.images[q])
        axes[row, 0].set_title(f"val: {val_names[val_set.labels[q]][:16]}", fontsize=7, color="tab:red")
        for col, t in enumerate(nbrs, 1):
            axes[row, col].imshow(train_set.images[t])
            axes[row, col].set_title(train_names[train_set.labels[t]][:16], fontsize=7)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(
        "Validation images (left) and their nearest training images by fc7 features (Figure 4, right)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(args):
    """Entry point of ``python -m alexnet visualize``; returns the exit status."""
    device = check_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    model = checkpoint.build_model(device).eval()
    out = Path(args.out)
    with saving(out):
        out.mkdir(parents=True, exist_ok=True)
    input_spec = checkpoint_spec(checkpoint)
    with saving(out / "conv1_kernels.png"):
        kernels_path = draw_conv1_kernels(model, out / "conv1_kernels.png", input_spec.channel_order)
    print(f"conv1 kernels (Figure 3): {kernels_path}")

    meta, saved = checkpoint.meta, checkpoint.meta.get("args", {})
    spec = args.data or meta.get("data_path")
    if spec is None or args.queries == 0:
        print("no --data: skipping the nearest-neighbour figure", file=sys.stderr)
        return 0
    path = resolve_data(
        spec,
        meta.get("image_size", 256),
        saved.get("classes"),
        saved.get("per_class"),
        saved.get("val_per_class"),
        args.workers,
    )
    train_set = open_split(path, "train")
    val_set = open_split(path, "val") or train_set
    crop, scale = checkpoint.config["crop"], input_spec.input_scale
    check_crop(train_set, crop)
    # The checkpoint's mean pixel, if it has one (the class labels are only used for titles here).
    if input_spec.mean_kind == "pixel":
        same = val_set is train_set
        train_set = dataset_for(input_spec, train_set)[0]
        val_set = train_set if same else dataset_for(input_spec, val_set)[0]
    rng = np.random.default_rng(args.seed)
    train_idx = np.arange(len(train_set))
    if args.max_train and len(train_idx) > args.max_train:
        train_idx = np.sort(rng.choice(train_idx, args.max_train, replace=False))
    queries = np.sort(rng.choice(len(val_set), min(args.queries, len(val_set)), replace=False))
    train_features = fc7_features(
        model, train_set, crop, scale, train_idx, device=device, to_network=input_spec.to_network
    )
    query_features = fc7_features(
        model, val_set, crop, scale, queries, device=device, to_network=input_spec.to_network
    )
    order, _ = nearest_neighbours(query_features, train_features, min(args.neighbours, len(train_idx)))
    with saving(out / "nearest_neighbours.png"):
        nn_path = draw_neighbours(
            val_set, train_set, queries, train_idx[order], out / "nearest_neighbours.png"
        )
    print(
        f"nearest neighbours in fc7 space (Figure 4, right), among {len(train_idx)} training images: {nn_path}"
    )
    return 0
