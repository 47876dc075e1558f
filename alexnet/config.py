"""The settings of one training run: ``TrainConfig``, its presets and what ``--resume`` may change.

Every setting of ``python -m alexnet train`` is a field of ``TrainConfig``, with its default (the
paper's, §5) and, in the field's metadata, its command-line flag, help text and parser type: the
``train`` parser is generated from these fields (``add_train_arguments``), so a setting, its default
and its flag live in one place. A checkpoint stores ``asdict(config)`` as ``meta["args"]``; the field
names are the names checkpoints have always stored, so every checkpoint resumes unchanged.

Presets (``--preset NAME``) are named sets of field values (``PRESETS``); flags typed on the
command line override them.

The resume policy (a resumed run is the same run; see alexnet/resume.py):

* ``CHANGEABLE``: taken from the command line as they are; they do not change the result;
* ``RECORDED``: applied from the resumed step on and recorded in the checkpoint (``--lr``);
* ``CHECKED``: accepted after a check that it is still the run's (``--data``: the same subset);
* every other field is checked: a typed value that differs from the checkpoint's is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any

# -- parser types (also used by the other commands' flags in alexnet/cli.py) ---------------------


# argparse prefixes an ArgumentTypeError's message with the flag ("argument --seed: ..."); any
# other exception would become "invalid positive_int value", so every failure is turned into one.


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def nonnegative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def probability(text: str) -> float:
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


#: Sane bounds of a model configuration, checked before anything is built: by the flags below
#: (``summary``) and by the loaders of checkpoints and ONNX files (alexnet/checkpoint.py,
#: ``check_model_config``). Beyond them (10^7 classes, a 10^5 crop) a network asks for hundreds of
#: GiB. The smallest crop is the architecture's (alexnet/model.py, MIN_CROP).
MAX_CLASSES = 100_000
MAX_CROP = 1024
MAX_WIDTH = 4.0
#: Their product is bounded too: alexnet/model.py, ``MAX_PARAMETERS`` and ``check_size``.


def model_num_classes(text: str) -> int:
    value = _number(text, int)
    if not 1 <= value <= MAX_CLASSES:
        raise argparse.ArgumentTypeError(f"must be an integer in 1..{MAX_CLASSES}, got {text}")
    return value


def model_crop(text: str) -> int:
    from .model import MIN_CROP  # the network's module (NumPy) only when the flag is given

    value = _number(text, int)
    if not MIN_CROP <= value <= MAX_CROP:
        raise argparse.ArgumentTypeError(f"must be an integer in {MIN_CROP}..{MAX_CROP}, got {text}")
    return value


def model_width(text: str) -> float:
    value = _number(text, float)
    if not 0 < value <= MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"must be a number in (0, {MAX_WIDTH:g}], got {text}")
    return value


#: ``--input-scale`` bounds. The mean-centred pixels lie within +-255; divided by X they lie
#: within +-255/X. Below 1e-3 they exceed +-2.5e5 and the first layers' outputs overflow the
#: loss; above 1e4 they are below 0.026, under the initial biases' scale, and the network
#: trains on (almost) no signal. The useful values (1 for the paper's init, ~64 for He init) lie
#: well inside.
INPUT_SCALE_RANGE = (1e-3, 1e4)


def input_scale(text: str) -> float:
    value = _number(text, float)
    low, high = INPUT_SCALE_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], got {text}")
    return value


def option(default: Any, *flags: str, help: str, **parser: Any) -> Any:
    """A ``TrainConfig`` field: ``default`` and how the ``train`` parser spells it (``flags``,
    ``help`` and any further ``argparse.add_argument`` keywords: ``type``, ``choices``, ...)."""
    return field(default=default, metadata={"flags": flags, "help": help, "parser": parser})


WORKERS_HELP = "data loader threads (and image-decoding processes when preparing); default: up to 2"


@dataclass
class TrainConfig:
    """Every setting of a training run, with the paper's defaults (§5). See the module docstring."""

    # -- data (§2) -------------------------------------------------------------------------------
    data: str | None = option(
        None,
        "--data",
        metavar="DIR|imagenette",
        help="a prepared subset folder, a raw ImageNet-style folder (train/<wnid>/*.JPEG, val/...; "
        "prepared on first use into the cache, $ALEXNET_CACHE), or 'imagenette' (downloaded). "
        "Required, except with --resume (default: the run's own)",
    )
    classes: str | None = option(
        None,
        "--classes",
        metavar="K|WNIDS",
        help="when preparing: the first K classes (sorted WordNet IDs) or a comma-separated list of "
        "WordNet IDs",
    )
    per_class: int | None = option(
        None,
        "--per-class",
        type=positive_int,
        metavar="N",
        help="when preparing: at most N training images per class",
    )
    val_per_class: int | None = option(
        None,
        "--val-per-class",
        type=positive_int,
        metavar="N",
        help="when preparing: at most N validation images per class",
    )
    image_size: int = option(
        256,
        "--image-size",
        type=positive_int,
        metavar="S",
        help="when preparing: rescale the shorter side to S and keep the central S x S patch (§2)",
    )
    crop: int = option(
        227,
        "--crop",
        type=model_crop,
        metavar="C",
        help="side of the random training crops and of the test crops (§4.1); 227 gives conv1's "
        "55 x 55 (the paper's '224' does not); in 67..1024",
    )
    # -- optimization (§5) -----------------------------------------------------------------------
    epochs: int = option(90, "--epochs", type=positive_int, help="total number of epochs (§5: about 90)")
    batch_size: int = option(128, "-b", "--batch-size", type=positive_int, help="mini-batch size (§5)")
    lr: float = option(
        0.01, "--lr", "--learning-rate", type=positive_float, help="initial learning rate (§5)"
    )
    momentum: float = option(0.9, "--momentum", type=nonnegative_float, help="momentum (§5)")
    wd: float = option(5e-4, "--wd", "--weight-decay", type=nonnegative_float, help="weight decay (§5)")
    schedule: str = option(
        "plateau",
        "--schedule",
        choices=["plateau", "step"],
        help="plateau: divide the lr by 10 when the val top-1 error stops improving, at most three "
        "times, then stop (§5); step: divide by 10 every --step-size epochs",
    )
    step_size: int = option(
        30, "--step-size", type=positive_int, help="epochs between reductions for --schedule step"
    )
    init: str = option(
        "paper",
        "--init",
        choices=["paper", "kaiming"],
        help="paper: weights N(0, 0.01), biases 1 in conv2/4/5 and fc6/7 (§5); kaiming: He init",
    )
    input_scale: float = option(
        1.0,
        "--input-scale",
        type=input_scale,
        metavar="X",
        help="divide the mean-centred pixels by X (use ~64 with --init kaiming); in [1e-3, 1e4]: "
        "beyond, the inputs are so large that the loss overflows, or so small that the network "
        "sees no signal",
    )
    lighting_std: float = option(
        0.1,
        "--lighting-std",
        type=nonnegative_float,
        metavar="SIGMA",
        help="std of the PCA colour-shift coefficients alpha (§4.1: 0.1); 0 disables the colour augmentation",
    )
    # -- the network (§3) ------------------------------------------------------------------------
    groups: int = option(
        2,
        "--groups",
        type=int,
        choices=[1, 2],
        help="2: the two-GPU network of §3.2 (grouped conv2, conv4, conv5); 1: a single tower",
    )
    lrn_across_towers: bool = option(
        False,
        "--lrn-across-towers",
        action="store_true",
        help="with --groups 2: let LRN's window run across both towers' maps (Caffe's BVLC "
        "AlexNet) instead of each tower normalizing its own maps (the paper, §3.2-3.3)",
    )
    width: float = option(
        1.0,
        "--width",
        type=model_width,
        help="multiply every channel count and the fc6/fc7 widths (reduced networks); in (0, 4]",
    )
    towers: bool = option(
        False,
        "--towers",
        action="store_true",
        help="the paper's two GPUs (§3.2) as two processes: run under `mpiexec -n 2`; rank g holds "
        "tower g (half of every layer's kernels) and the towers exchange activations at conv3, "
        "fc6, fc7, fc8 and the logits. Computes what --groups 2 computes in one process; "
        "checkpoints are ordinary one-process ones (resume with or without --towers)",
    )
    dropout: float = option(
        0.5, "--dropout", type=probability, help="dropout probability in fc6 and fc7 (§4.2)"
    )
    seed: int = option(
        0,
        "--seed",
        type=nonnegative_int,
        help="seeds the weights, the dropout masks and the data order/augmentation (>= 0)",
    )
    # -- the run -----------------------------------------------------------------------------------
    out: str = option(
        "runs/alexnet",
        "--out",
        metavar="DIR",
        help="folder for checkpoint.npz, best.npz, log.jsonl and curves.png",
    )
    resume: str | None = option(
        None,
        "--resume",
        nargs="?",
        const="auto",
        metavar="CHECKPOINT",
        help="continue a run exactly; without a value: OUT/checkpoint.npz. The checkpoint's "
        "settings are used. May be given with it: --epochs, --device, --workers, --out, "
        "--quiet, --towers; --lr (a new value applies from the resumed step on and is recorded in "
        "log.jsonl); --data (only the same prepared subset, e.g. moved). Any other flag "
        "whose value differs from the run's is refused",
    )
    overwrite: bool = option(
        False,
        "--overwrite",
        action="store_true",
        help="start afresh in an --out that holds a run: its files are moved into "
        "OUT/overwritten-<time>/ and deleted once the new run saved its first checkpoint "
        "(without --overwrite or --resume such an --out is refused)",
    )
    quiet: bool = option(False, "--quiet", action="store_true", help="no progress bar")
    device: str = option(
        "cpu",
        "--device",
        choices=["cpu", "cuda"],
        help="cpu (NumPy) or cuda (CuPy on an NVIDIA GPU); default cpu",
    )
    workers: int | None = option(
        None, "-j", "--workers", type=nonnegative_int, metavar="N", help=WORKERS_HELP
    )

    # -- conversions -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (what a checkpoint stores as ``meta["args"]``)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def non_defaults(self) -> dict[str, str]:
        """``{field: flag}`` of the settings that differ from the defaults: for a config built in
        code, what a command line would have had to type (see ``alexnet.cli.given_options``)."""
        defaults = TrainConfig()
        return {
            name: flag
            for name, flag in flag_names().items()
            if getattr(self, name) != getattr(defaults, name)
        }

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The preset ``name`` (see ``PRESETS``), with ``overrides`` on top."""
        return cls(**{**preset_values(name), **overrides})


def flag_names() -> dict[str, str]:
    """``{field: '--long-flag'}`` for every field of ``TrainConfig``."""
    names = {}
    for f in fields(TrainConfig):
        flags = f.metadata["flags"]
        names[f.name] = next((flag for flag in flags if flag.startswith("--")), flags[0])
    return names


def defaults() -> dict[str, Any]:
    """``{field: default}`` for every field of ``TrainConfig``."""
    return TrainConfig().to_dict()


# -- presets ----------------------------------------------------------------------------------------

#: Named sets of settings for ``--preset``; flags typed on the command line override them.
PRESETS: dict[str, dict[str, Any]] = {
    # The paper's settings (§2, §3.2, §4, §5), which are the defaults. Spelled out so that with
    # --resume the preset counts as these flags typed (one that would change a run is refused).
    "paper": {
        key: getattr(TrainConfig(), key)
        for key in (
            "image_size",
            "crop",
            "epochs",
            "batch_size",
            "lr",
            "momentum",
            "wd",
            "schedule",
            "init",
            "input_scale",
            "lighting_std",
            "groups",
            "lrn_across_towers",
            "dropout",
        )
    },
    # The reduced-scale recipe (Imagenette on a 2-core CPU, docs/recipe.md): smaller images, He
    # init with the inputs divided by 64 (the paper's init stays at chance at this scale), 6 epochs.
    "reduced": {"image_size": 128, "crop": 112, "init": "kaiming", "input_scale": 64.0, "epochs": 6},
}


def preset_values(name: str) -> dict[str, Any]:
    """The field values of preset ``name``; ValueError naming the presets for an unknown one."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return dict(PRESETS[name])


# -- the resume policy ------------------------------------------------------------------------------

#: Fields a resumed run takes from the command line as they are.
CHANGEABLE = ("epochs", "device", "workers", "quiet", "out", "resume", "overwrite", "towers")
#: Fields applied on resume and recorded in the checkpoint and the log.
RECORDED = ("lr",)
#: Fields accepted on resume after a check (the same prepared subset: ``resume.check_same_subset``).
CHECKED = ("data",)


def resumable_flags() -> str:
    """The flags that may be given with ``--resume``, in words (for messages)."""
    names = flag_names()
    listed = [names[key] for key in CHANGEABLE] + [f"{names[key]} (applied and recorded)" for key in RECORDED]
    listed += [f"{names[key]} (the same subset)" for key in CHECKED]
    return ", ".join(listed[:-1]) + " and " + listed[-1]


# -- the parser -------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per ``TrainConfig`` field (in field order), then ``--preset``."""
    for f in fields(TrainConfig):
        meta = f.metadata
        parser.add_argument(
            *meta["flags"], dest=f.name, default=f.default, help=meta["help"], **meta["parser"]
        )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="start from a named set of settings that the other flags override: paper (the "
        "defaults, §5) or reduced (" + preset_flags("reduced") + ")",
    )


def preset_flags(name: str) -> str:
    """Preset ``name`` as the flags it stands for, e.g. ``--image-size 128 --crop 112 ...``."""
    names = flag_names()
    return " ".join(
        f"{names[key]} {value:g}" if isinstance(value, float) else f"{names[key]} {value}"
        for key, value in preset_values(name).items()
    )


def apply_preset(
    config: TrainConfig, name: str | None, typed: dict[str, str]
) -> tuple[TrainConfig, dict[str, str]]:
    """``config`` with preset ``name``'s values for the fields not in ``typed`` (``{field: flag}`` of
    the flags typed on the command line, which override the preset), and ``typed`` completed with
    the fields the preset set: for ``--resume`` a preset counts as its flags typed out, so one that
    repeats the run's settings is accepted and one that would change them is refused by flag name."""
    if name is None:
        return config, dict(typed)
    names = flag_names()
    values = {key: value for key, value in preset_values(name).items() if key not in typed}
    return config.replace(**values), {**typed, **{key: names[key] for key in values}}


def config_from_namespace(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of a parsed ``train`` command line (extra attributes ignored)."""
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


__all__ = [
    "TrainConfig",
    "PRESETS",
    "CHANGEABLE",
    "RECORDED",
    "CHECKED",
    "add_train_arguments",
    "apply_preset",
    "config_from_namespace",
    "defaults",
    "flag_names",
    "preset_values",
    "resumable_flags",
]
