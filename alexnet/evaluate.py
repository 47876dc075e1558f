"""Top-1 and top-5 error on the validation split, with one crop and with ten (§4.1, §6).

§4.1: "At test time, the network makes a prediction by extracting five 224 x 224
patches (the four corner patches and the center patch) as well as their
horizontal reflections (hence ten patches in all), and averaging the predictions
made by the network's softmax layer on the ten patches."

The validation set is processed in chunks of ``batch_size`` images (ten crops:
``batch_size`` x 10 patches at a time), so memory stays bounded whatever its size.
The result is printed as a table shaped like the paper's Table 1.

The checkpoint's preprocessing is honoured (alexnet/preprocessing.py): a model trained here
gets the dataset's mean image, RGB; a Caffe-trained model imported from ONNX gets its mean
pixel and BGR channels. A dataset whose classes are a subset of the model's (say Imagenette's
10 classes for a 1000-class model) is scored over all of the model's classes, its labels
matched by WordNet ID.
"""

import sys

import numpy as np

import data
from nn import check_device, get_array_module, softmax

from .checkpoint import load_checkpoint
from .datasets import check_crop, open_split, resolve_data
from .metrics import topk_correct
from .preprocessing import checkpoint_spec, dataset_for

#: Table 1 of the paper (ILSVRC-2010 test set), for reference.
PAPER_TABLE1 = (
    ("Sparse coding [2]", 0.471, 0.282),
    ("SIFT + FVs [24]", 0.458, 0.257),
    ("CNN (paper)", 0.375, 0.170),
)


def check_finite_logits(logits, what: str = "the images") -> None:
    """ValueError (one line) when the network's outputs for ``what`` hold NaN or an infinity: a
    softmax of them, or their ranking, would be printed as if it meant something."""
    xp = get_array_module(logits)
    if not bool(xp.isfinite(logits).all()):
        raise ValueError(
            f"the network's outputs (logits) for {what} are NaN or infinite: the weights or the "
            "input scale make it overflow; no prediction can be made"
        )


def evaluate_model(
    model,
    dataset,
    crop,
    input_scale=1.0,
    batch_size=64,
    device="cpu",
    ten_crop=True,
    progress=False,
    to_network=None,
):
    """{"center": (top1_error, top5_error), "ten_crop": (...)} over ``dataset``.

    ``dataset`` is a data.PreparedDataset; the per-pixel mean it carries is subtracted (§2).
    ``to_network`` (e.g. ``InputSpec.to_network``, BGR for Caffe models) is applied to every batch.
    """
    model.eval()
    results = {}
    modes = [("center", False)] + ([("ten_crop", True)] if ten_crop else [])
    for name, ten in modes:
        loader = data.Loader(
            dataset, batch_size, crop=crop, train=False, ten_crop=ten, device=device, input_scale=input_scale
        )
        hits1 = hits5 = count = 0
        iterator = loader
        if progress:
            from tqdm import tqdm

            iterator = tqdm(
                loader, desc=f"evaluate ({name.replace('_', ' ')})", unit="batch", file=sys.stderr
            )
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported by check_finite_logits
            for x, y in iterator:
                if to_network is not None:
                    x = to_network(x)
                if ten:
                    b = x.shape[0]
                    logits = model.forward(x.reshape((b * 10,) + tuple(x.shape[2:])))
                    check_finite_logits(logits, "a batch of validation images")
                    probs = softmax(logits)
                    scores = probs.reshape(b, 10, -1).mean(axis=1)  # average the ten softmax outputs
                else:
                    scores = model.forward(x)
                    check_finite_logits(scores, "a batch of validation images")
                c1, c5 = topk_correct(scores, y)
                hits1, hits5, count = hits1 + c1, hits5 + c5, count + len(y)
        results[name] = (1 - hits1 / count, 1 - hits5 / count)
    return results


def format_table(results, title):
    """The errors as a table like Table 1 (with the paper's rows for reference)."""
    lines = [title, f"{'Model':<34}{'Top-1':>8}{'Top-5':>8}", "-" * 50]
    labels = {"center": "this model, center crop", "ten_crop": "this model, 10 crops (§4.1)"}
    for key, (top1, top5) in results.items():
        lines.append(f"{labels[key]:<34}{100 * top1:7.1f}%{100 * top5:7.1f}%")
    lines.append("-" * 50)
    lines.append("Table 1 of the paper (ILSVRC-2010 test, 1000 classes):")
    for name, top1, top5 in PAPER_TABLE1:
        lines.append(f"  {name:<32}{100 * top1:7.1f}%{100 * top5:7.1f}%")
    return "\n".join(lines)


def main(args):
    """Entry point of ``python -m alexnet evaluate``; returns the exit status."""
    device = check_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint)
    meta = checkpoint.meta
    saved_args = meta.get("args", {})
    spec = args.data or meta.get("data_path")
    if spec is None:
        raise ValueError("--data is required (the checkpoint does not name its dataset)")
    path = resolve_data(
        spec,
        args.image_size or meta.get("image_size", 256),
        saved_args.get("classes"),
        saved_args.get("per_class"),
        saved_args.get("val_per_class"),
        args.workers,
    )
    split = open_split(path, args.split)
    if split is None:
        raise ValueError(f"{path} has no {args.split} images to evaluate")
    crop = checkpoint.config["crop"]
    check_crop(split, crop)
    input_spec = checkpoint_spec(checkpoint)
    model_wnids = meta.get("wnids")
    view, note = dataset_for(input_spec, split, model_wnids)
    if note:
        print(f"note: {note}", file=sys.stderr)
    elif split.num_classes != checkpoint.config["num_classes"]:
        raise ValueError(
            f"the checkpoint has {checkpoint.config['num_classes']} classes but {path} has "
            f"{split.num_classes}"
        )
    elif list(split.wnids) != list(model_wnids or split.wnids):
        print("warning: the dataset's classes differ from the checkpoint's training classes", file=sys.stderr)
    if input_spec.channel_order != "rgb" or input_spec.mean_kind != "image":
        print(f"input: {input_spec.describe()}", file=sys.stderr)
    model = checkpoint.build_model(device)
    input_scale = args.input_scale if args.input_scale is not None else input_spec.input_scale
    results = evaluate_model(
        model,
        view,
        crop,
        input_scale,
        args.batch_size,
        device,
        ten_crop=not args.center_only,
        progress=not args.quiet,
        to_network=input_spec.to_network,
    )
    origin = (
        f"imported from {meta['source'].get('onnx')}" if meta.get("source") else f"epoch {meta.get('epoch')}"
    )
    title = (
        f"{args.checkpoint} ({origin}) on {path} [{args.split}]: {len(split)} images, "
        f"{split.num_classes} classes, crop {crop}"
    )
    print(format_table(results, title))
    return 0
