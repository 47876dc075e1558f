"""The five most probable classes of any photograph, and a figure like Figure 4 (left).

A new image is preprocessed exactly like the training data (§2), with the data
package's own functions: rescale so that the shorter side is S and keep the
central S x S patch (``data.load_image_square``), subtract the training set's
per-pixel mean image (stored in the checkpoint) and cut the central crop
(``data.center_crop_batch``), divided by the run's input scale.

A checkpoint imported from a Caffe-trained ONNX model (alexnet/onnx_io/) asks for
BGR channels and a mean pixel instead; ``alexnet.preprocessing.checkpoint_spec`` reads
that from the checkpoint and the channels are reversed just before the network.

Of several files, one that cannot be read is reported (one line, with why) and the others are
predicted; the exit status is then 1. Logits that are NaN or infinite (an overflow) are refused
rather than printed as probabilities.

When a file's name or folder gives its WordNet ID (``n01440764_tench.JPEG``,
``.../n01440764/x.JPEG``), the true class is printed and, in the figure, written under
the image with its bar in red when it is among the top 5, as in Figure 4 (left).
"""

import sys
from pathlib import Path

import numpy as np

import data
from nn import asnumpy, check_device, softmax, to_device

from .checkpoint import load_checkpoint
from .evaluate import check_finite_logits
from .imagenet_classes import wnid_of_path, words_for
from .preprocessing import checkpoint_spec
from .rundir import saving


def read_image(path, image_size: int) -> np.ndarray:
    """The uint8 S x S x 3 central patch of one image file (§2); a one-line error if unreadable."""
    try:
        return data.load_image_square(path, image_size)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such image: {path}") from None
    except Exception as exc:
        raise ValueError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from exc


def preprocess(paths, image_size, mean_image, crop, input_scale=1.0, channel_order="rgb"):
    """(uint8 S x S x 3 images, float32 N x 3 x crop x crop network inputs) for image files.

    ``mean_image`` is in RGB order (as images are decoded); ``channel_order="bgr"`` reverses
    the channels of the mean-subtracted crops for a Caffe-trained network."""
    images = np.stack([read_image(path, image_size) for path in paths])
    return images, network_input(images, mean_image, crop, input_scale, channel_order)


def network_input(images, mean_image, crop, input_scale=1.0, channel_order="rgb") -> np.ndarray:
    """float32 N x 3 x crop x crop: the central crops of ``images`` minus the mean, scaled (§2),
    the channels reversed for a Caffe-trained (``"bgr"``) network."""
    x = data.center_crop_batch(images, mean_image, crop, input_scale=input_scale)
    if channel_order == "bgr":
        x = np.ascontiguousarray(x[:, ::-1])
    elif channel_order != "rgb":
        raise ValueError(f"unknown channel order {channel_order!r} (rgb or bgr)")
    return x


def predict_probs(model, x, batch_size=32):
    """Softmax probabilities (N x K, NumPy) of the inputs ``x`` (in eval mode, in chunks)."""
    model.eval()
    probs = []
    for start in range(0, len(x), batch_size):
        chunk = to_device(x[start : start + batch_size], model.device)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
            logits = model.forward(chunk)
        check_finite_logits(logits, f"images {start + 1}..{start + len(chunk)}")
        probs.append(asnumpy(softmax(logits)))
    return np.concatenate(probs)


def top_k(probs, class_names, k=5):
    """[(name, probability)] of the k most probable classes, most probable first."""
    order = np.argsort(-probs)[:k]
    return [(class_names[i], float(probs[i])) for i in order]


def true_classes(paths, wnids, class_names):
    """For each file: (class index or None, name or None) from the WordNet ID in its name or folder."""
    index = {w: i for i, w in enumerate(wnids or [])}
    result = []
    for path in paths:
        wnid = wnid_of_path(path)
        if wnid is None:
            result.append((None, None))
        elif wnid in index:
            result.append((index[wnid], class_names[index[wnid]]))
        else:
            result.append((None, f"{words_for(wnid, wnid)} (not one of the model's classes)"))
    return result


def draw_figure(images, predictions, path, titles=None, truth=None, truth_rank=None):
    """Figure 4 (left): each image above the bars of its five most probable labels.

    ``truth``: the correct label of each image (or None), written under it; ``truth_rank``: its
    position among the image's predictions (or None), drawn as a red bar as in the paper."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    n = len(images)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.2 * cols, 5.2 * rows))
    axes = fig.subplots(2 * rows, cols, gridspec_kw={"height_ratios": [3, 2] * rows}, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (image, preds) in enumerate(zip(images, predictions)):
        r, c = divmod(i, cols)
        ax_img, ax_bar = axes[2 * r, c], axes[2 * r + 1, c]
        ax_img.imshow(image)
        ax_img.set_title(titles[i] if titles else "", fontsize=8)
        if truth and truth[i]:
            ax_img.text(
                0.5,
                -0.04,
                truth[i][:40],
                transform=ax_img.transAxes,
                ha="center",
                va="top",
                fontsize=8,
                fontweight="bold",
            )
        names = [name[:28] for name, _ in preds][::-1]
        probs = [p for _, p in preds][::-1]
        if truth_rank is not None:
            colors = ["tab:red" if truth_rank[i] == r else "tab:blue" for r in range(len(preds))][::-1]
        else:
            colors = ["tab:red" if truth and truth[i] == name else "tab:blue" for name, _ in preds][::-1]
        ax_bar.axis("on")
        ax_bar.barh(range(len(probs)), probs, color=colors)
        ax_bar.set_yticks(range(len(probs)))
        ax_bar.set_yticklabels(names, fontsize=7)
        ax_bar.set_xlim(0, 1)
        ax_bar.tick_params(axis="x", labelsize=7)
    fig.suptitle(
        "Top-5 predictions (Figure 4, left)"
        + ("; correct label under each image, red bar" if truth and any(truth) else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(args):
    """Entry point of ``python -m alexnet predict``; returns the exit status."""
    device = check_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    try:
        spec = checkpoint_spec(checkpoint)
    except ValueError as exc:
        raise ValueError(f"{args.checkpoint}: {exc}") from None
    model = checkpoint.build_model(device)
    # An unreadable file among several is reported and skipped; the exit status says so.
    paths, images = [], []
    for path in args.images:
        try:
            images.append(read_image(path, spec.image_size))
            paths.append(path)
        except (FileNotFoundError, ValueError) as exc:
            print(f"python -m alexnet predict: error: {exc}", file=sys.stderr)
    failed = len(args.images) - len(paths)
    if not paths:
        raise ValueError(f"none of the {len(args.images)} images could be read")
    images = np.stack(images)
    x = network_input(
        images, spec.mean_image_rgb(), checkpoint.config["crop"], spec.input_scale, spec.channel_order
    )
    if spec.channel_order != "rgb" or spec.mean_kind != "image":
        print(f"input: {spec.describe()}", file=sys.stderr)
    probs = predict_probs(model, x)
    names = checkpoint.class_names
    k = min(args.topk, len(names))
    predictions = [top_k(p, names, k) for p in probs]
    truths = true_classes(paths, checkpoint.meta.get("wnids"), names)
    ranks = []
    for path, preds, p, (label, truth) in zip(paths, predictions, probs, truths):
        print(path)
        for rank, (name, prob) in enumerate(preds, 1):
            print(f"  {rank}. {100 * prob:6.2f}%  {name}")
        rank = None
        if label is not None:
            rank = int((p > p[label]).sum())  # 0-based position of the true class
            print(f"  true class: {truth} (rank {rank + 1})")
        elif truth is not None:
            print(f"  true class: {truth}")
        ranks.append(rank if rank is not None and rank < k else None)
    if args.figure:
        with saving(args.figure):
            draw_figure(
                images,
                predictions,
                args.figure,
                titles=[Path(p).name for p in paths],
                truth=[t for _, t in truths],
                truth_rank=ranks,
            )
        print(f"figure written to {args.figure}", file=sys.stderr)
    if failed:
        print(
            f"python -m alexnet predict: {failed} of {len(args.images)} images could not be read",
            file=sys.stderr,
        )
        return 1
    return 0
