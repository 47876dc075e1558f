"""The command line: ``python -m alexnet {train,evaluate,predict,visualize,summary,export,import-onnx}``.

Flag names follow the PyTorch ImageNet example (``--data``, ``-b/--batch-size``,
``--lr``, ``--momentum``, ``--wd``, ``--epochs``, ``--resume``, ``--workers``,
``--seed``); the defaults are the paper's (§5).
"""

from __future__ import annotations

import argparse
import sys

from .config import (
    TrainConfig,
    add_train_arguments,
    apply_preset,
    config_from_namespace,
    model_crop,
    model_num_classes,
    model_width,
    nonnegative_int,
    positive_float,
    positive_int,
)
from .rundir import SaveFailed


def _common(p, workers_help="data loader threads (and image-decoding processes when preparing)"):
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cpu (NumPy) or cuda (CuPy on an NVIDIA GPU); default cpu",
    )
    p.add_argument(
        "-j",
        "--workers",
        type=nonnegative_int,
        default=None,
        metavar="N",
        help=f"{workers_help}; default: up to 2",
    )


def add_train(sub):
    p = sub.add_parser(
        "train",
        help="train AlexNet on a (reduced) ImageNet subset",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train AlexNet with the paper's SGD (§5) and augmentation (§4.1). After every epoch: "
        "train/val top-1 and top-5 error, a line in OUT/log.jsonl, OUT/curves.png, "
        "OUT/checkpoint.npz (everything needed to resume exactly) and OUT/best.npz.",
        epilog="Reduced-scale recipe (Imagenette on a 2-core CPU, about 3-4 min per epoch; docs/recipe.md): "
        "--data imagenette --preset reduced (that is --image-size 128 --crop 112 --init kaiming "
        "--input-scale 64 --epochs 6). "
        "The paper's init (N(0, 0.01), §5) on mean-centred 0..255 pixels is the default, but at this "
        "reduced scale it stayed at chance for as long as we ran it (in PyTorch too); with He/Kaiming "
        "init raw 0..255 inputs diverge, so divide them by --input-scale 64 (roughly the pixels' "
        "standard deviation), a choice the paper does not make.",
    )
    add_train_arguments(p)  # one flag per TrainConfig field (alexnet/config.py), and --preset
    p.set_defaults(func="train")


def add_evaluate(sub):
    p = sub.add_parser(
        "evaluate",
        help="top-1 / top-5 error with the centre crop and with 10 crops (Table 1)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Top-1 and top-5 error on a split, with the centre crop and with the ten crops of §4.1 "
        "(softmax averaged), printed like the paper's Table 1. Works in chunks of --batch-size images.",
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz written by train")
    p.add_argument(
        "--data", default=None, help="dataset (as for train); default: the one the checkpoint was trained on"
    )
    p.add_argument("--split", choices=["val", "train"], default="val", help="which split to evaluate")
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        metavar="S",
        help="S when --data must be prepared; default: the checkpoint's",
    )
    p.add_argument(
        "--input-scale", type=positive_float, default=None, metavar="X", help="default: the checkpoint's"
    )
    p.add_argument(
        "-b",
        "--batch-size",
        type=positive_int,
        default=64,
        help="images per chunk (x10 patches in ten-crop mode)",
    )
    p.add_argument("--center-only", action="store_true", help="skip the ten-crop evaluation")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(p)
    p.set_defaults(func="evaluate")


def add_predict(sub):
    p = sub.add_parser(
        "predict",
        help="top-5 classes of photographs; --figure draws Figure 4 (left)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Preprocess each image like the training data (§2: shorter side to S, central crop, "
        "mean subtracted) and print its most probable classes.",
        epilog="An image that cannot be read is reported (one line, with why) and the others are "
        "predicted; the exit status is then 1 (0 when every image was read).",
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz written by train")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    p.add_argument("--topk", type=positive_int, default=5, help="how many classes to print")
    p.add_argument(
        "--figure", default=None, metavar="PNG", help="also draw the images with their top-5 bars here"
    )
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cpu or cuda")
    p.set_defaults(func="predict")


def add_visualize(sub):
    p = sub.add_parser(
        "visualize",
        help="conv1 kernels (Figure 3) and fc7 nearest neighbours (Figure 4, right)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write OUT/conv1_kernels.png (the first layer's kernels, the two groups apart) and "
        "OUT/nearest_neighbours.png (validation images and the training images nearest in "
        "Euclidean distance of their fc7 features).",
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz written by train")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the figures")
    p.add_argument(
        "--data", default=None, help="dataset for the neighbours (as for train); default: the checkpoint's"
    )
    p.add_argument("--queries", type=nonnegative_int, default=5, help="validation images to show (0: none)")
    p.add_argument("--neighbours", type=positive_int, default=6, help="training images per query (§6.1: 6)")
    p.add_argument(
        "--max-train",
        type=nonnegative_int,
        default=5000,
        help="search among at most this many training images (a random sample; 0: all)",
    )
    p.add_argument(
        "--seed", type=nonnegative_int, default=0, help="chooses the queries and the training sample (>= 0)"
    )
    _common(p)
    p.set_defaults(func="visualize")


def add_summary(sub):
    p = sub.add_parser(
        "summary",
        help="print the layer table (output shapes, parameters, MACs)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="The layer-by-layer table of §3.5 / Figure 2 for a configuration.",
    )
    p.add_argument("--num-classes", type=model_num_classes, default=1000, help="outputs of fc8")
    p.add_argument("--crop", type=model_crop, default=227, help="input side (>= 67)")
    p.add_argument("--groups", type=int, choices=[1, 2], default=2, help="1 or 2 towers (§3.2)")
    p.add_argument("--width", type=model_width, default=1.0, help="channel multiplier")
    p.set_defaults(func="summary")


def add_export(sub):
    p = sub.add_parser(
        "export",
        help="write a checkpoint as an ONNX file (checked by onnx.checker)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Write the network as standard ONNX operators (Conv, Relu, LRN, MaxPool, Flatten, Gemm; "
        "LRN per tower as Split/LRN/Concat), with the preprocessing (mean, input scale, crop, "
        "channel order) and the class names in the model's metadata. Needs the onnx package.",
    )
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz or best.npz")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write (atomically)")
    p.add_argument("--softmax", action="store_true", help="also output the class probabilities ('prob')")
    p.add_argument("--opset", type=int, default=13, help="ONNX opset version (13 or newer)")
    p.set_defaults(func="export")


def add_import_onnx(sub):
    p = sub.add_parser(
        "import-onnx",
        help="build a checkpoint from an AlexNet-shaped ONNX file (e.g. the model zoo's bvlcalexnet)",
        description="Read an ONNX AlexNet (ours, or Caffe's BVLC AlexNet as the ONNX model zoo's "
        "bvlcalexnet-12.onnx) and write a normal checkpoint that evaluate, predict and visualize "
        "use unchanged. Refuses, with a one-line error, any node it cannot map.",
        epilog="Files without this project's metadata are taken to be Caffe-trained: BGR channels, 0..255 "
        "pixels minus the mean pixel B,G,R = 104,117,123; the checkpoint records it and predict/evaluate "
        "apply it.",
    )
    p.add_argument("onnx", metavar="ONNX", help="the .onnx file")
    p.add_argument("--out", required=True, metavar="CHECKPOINT", help="the checkpoint (.npz) to write")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out even when it is a training checkpoint (with optimizer state); inside a run "
        "folder the run's lock is held while writing either way",
    )
    p.add_argument(
        "--channel-order",
        choices=["bgr", "rgb"],
        default=None,
        help="channel order the network expects (default: the file's metadata, else bgr)",
    )
    p.add_argument(
        "--mean-pixel",
        default=None,
        metavar="A,B,C",
        help="mean pixel to subtract, in the network's channel order (B,G,R for bgr); default: the "
        "file's metadata, else 104,117,123",
    )
    p.add_argument(
        "--input-scale",
        type=positive_float,
        default=None,
        metavar="X",
        help="divide the mean-centred pixels by X (default: the file's metadata, else 1)",
    )
    p.add_argument(
        "--image-size",
        type=positive_int,
        default=None,
        metavar="S",
        help="rescale the shorter side to S before the central crop (default: metadata, else 256)",
    )
    p.set_defaults(func="import_onnx")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m alexnet",
        description="AlexNet (Krizhevsky, Sutskever, Hinton 2012) from scratch on NumPy/CuPy: train, evaluate, "
        "predict and visualize. Run `python -m alexnet COMMAND --help` for each command's flags.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train(sub)
    add_evaluate(sub)
    add_predict(sub)
    add_visualize(sub)
    add_summary(sub)
    add_export(sub)
    add_import_onnx(sub)
    return parser


def run_summary(args):
    from .model import AlexNet
    from .summary import format_summary

    model = AlexNet(num_classes=args.num_classes, crop=args.crop, groups=args.groups, width=args.width)
    print(format_summary(model))
    return 0


def option_names(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """``{dest: '--long-flag'}`` of a command's options."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    names = {}
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
            names[action.dest] = flag
    return names


def given_options(argv: list[str], command: str) -> dict[str, str]:
    """``{dest: flag}`` of the options typed on the command line ``argv`` (not argparse's defaults):
    parse once more with every default of ``command`` replaced by argparse.SUPPRESS."""
    probe = build_parser()
    sub = next(a for a in probe._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        action.default = argparse.SUPPRESS
    typed = vars(probe.parse_args(argv))
    return {dest: flag for dest, flag in option_names(probe, command).items() if dest in typed}


def train_config(args: argparse.Namespace, argv: list[str]) -> tuple[TrainConfig, dict[str, str]]:
    """The ``TrainConfig`` of a parsed ``train`` command line ``argv``, with ``--preset`` applied
    under the typed flags, and ``{field: flag}`` of the settings typed (or set by the preset): what
    decides what ``--resume`` may change."""
    typed = {dest: flag for dest, flag in given_options(argv, "train").items() if dest != "preset"}
    return apply_preset(config_from_namespace(args), args.preset, typed)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.func == "train":
            from .train import train

            return train(*train_config(args, argv))
        elif args.func == "evaluate":
            from .evaluate import main as run
        elif args.func == "predict":
            from .predict import main as run
        elif args.func == "visualize":
            from .visualize import main as run
        elif args.func == "export":
            from .onnx_io import main_export as run
        elif args.func == "import_onnx":
            from .onnx_io import main_import as run
        else:
            run = run_summary
        return run(args)
    except SaveFailed as exc:  # an output file could not be written: EX_IOERR, as train's saves
        from .train import EXIT_SAVE_FAILED

        print(f"python -m alexnet {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_SAVE_FAILED
    except (ValueError, FileNotFoundError, RuntimeError, KeyError) as exc:
        print(f"python -m alexnet {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
