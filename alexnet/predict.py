"""The five most probable classes of any photograph, and a figure like Figure 4 (left).

A new image is preprocessed exactly like the training data (§2), with the data
package's own functions: rescale so that the shorter side is S and keep the
central S x S patch (``data.load_image_square``), subtract the training set's
per-pixel mean image (stored in the checkpoint) and cut the central crop
(``data.center_crop_batch``), divided by the run's input scale.
"""
import sys
from pathlib import Path

import numpy as np

import data
from nn import asnumpy, check_device, softmax, to_device

from .checkpoint import load_checkpoint


def preprocess(paths, image_size, mean_image, crop, input_scale=1.0):
    """(uint8 S x S x 3 images, float32 N x 3 x crop x crop network inputs) for image files."""
    images = []
    for path in paths:
        try:
            images.append(data.load_image_square(path, image_size))
        except FileNotFoundError:
            raise FileNotFoundError(f"no such image: {path}") from None
        except Exception as exc:
            raise ValueError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from exc
    images = np.stack(images)
    return images, data.center_crop_batch(images, mean_image, crop, input_scale=input_scale)


def predict_probs(model, x, batch_size=32):
    """Softmax probabilities (N x K, NumPy) of the inputs ``x`` (in eval mode, in chunks)."""
    model.eval()
    probs = []
    for start in range(0, len(x), batch_size):
        chunk = to_device(x[start:start + batch_size], model.device)
        probs.append(asnumpy(softmax(model.forward(chunk))))
    return np.concatenate(probs)


def top_k(probs, class_names, k=5):
    """[(name, probability)] of the k most probable classes, most probable first."""
    order = np.argsort(-probs)[:k]
    return [(class_names[i], float(probs[i])) for i in order]


def draw_figure(images, predictions, path, titles=None, truth=None):
    """Figure 4 (left): each image above the bars of its five most probable labels."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    n = len(images)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.2 * cols, 5.2 * rows))
    axes = fig.subplots(2 * rows, cols,
                        gridspec_kw={"height_ratios": [3, 2] * rows}, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (image, preds) in enumerate(zip(images, predictions)):
        r, c = divmod(i, cols)
        ax_img, ax_bar = axes[2 * r, c], axes[2 * r + 1, c]
        ax_img.imshow(image)
        ax_img.set_title(titles[i] if titles else "", fontsize=8)
        names = [name[:28] for name, _ in preds][::-1]
        probs = [p for _, p in preds][::-1]
        colors = ["tab:red" if truth and truth[i] == name else "tab:blue" for name, _ in preds][::-1]
        ax_bar.axis("on")
        ax_bar.barh(range(len(probs)), probs, color=colors)
        ax_bar.set_yticks(range(len(probs)))
        ax_bar.set_yticklabels(names, fontsize=7)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(axis="x", labelsize=7)
    fig.suptitle("Top-5 predictions (Figure 4, left)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(args):
    """Entry point of ``python -m alexnet predict``; returns the exit status."""
    device = check_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    meta = checkpoint.meta
    if checkpoint.mean_image is None:
        raise ValueError(f"{args.checkpoint} has no mean image; it cannot preprocess new photographs")
    image_size = int(meta.get("image_size", checkpoint.mean_image.shape[0]))
    input_scale = float(meta.get("args", {}).get("input_scale", 1.0))
    model = checkpoint.build_model(device)
    images, x = preprocess(args.images, image_size, checkpoint.mean_image, checkpoint.config["crop"],
                           input_scale)
    probs = predict_probs(model, x)
    names = checkpoint.class_names
    k = min(args.topk, len(names))
    predictions = [top_k(p, names, k) for p in probs]
    for path, preds in zip(args.images, predictions):
        print(path)
        for rank, (name, p) in enumerate(preds, 1):
            print(f"  {rank}. {100 * p:6.2f}%  {name}")
    if args.figure:
        draw_figure(images, predictions, args.figure, titles=[Path(p).name for p in args.images])
        print(f"figure written to {args.figure}", file=sys.stderr)
    return 0
