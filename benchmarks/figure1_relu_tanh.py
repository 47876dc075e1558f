"""Figure 1 of the paper (§3.1) at small scale: how fast ReLU and tanh networks reach 25 % training error.

§3.1: "A four-layer convolutional neural network with ReLUs (solid line) reaches a 25% training error
rate on CIFAR-10 six times faster than an equivalent network with tanh neurons (dashed line). The
learning rates for each network were chosen independently to make training as fast as possible. No
regularization of any kind was employed." (See /work/shared/docs/paper-facts.md, §3.1.)

What this script does, and where it differs from the paper:

* Data: CIFAR-10 is not on this machine, so Imagenette (10 ImageNet classes) stands in for it,
  every photo made 32 x 32 the way §2 makes 256 x 256 ones (shorter side to 32, central square;
  ``data.images.load_image_square``), ``--images-per-class`` training photos of each class
  (CIFAR-10 has 5,000). The per-pixel mean image is subtracted (§2) and the result divided by
  its standard deviation. Without photos, a synthetic 10-class set of noisy blurred patterns is
  used instead, and the results say so (``"data": "synthetic"``).
* Network: "four-layer" is read as the layout of cuda-convnet's CIFAR-10 network (the first
  author's code; the paper does not give Figure 1's network): three 5 x 5 convolutions with 32, 32 and 64 kernels
  (padding 2), each followed by the activation and a 3 x 3 max-pool with stride 2 (§3.4), then one
  fully connected layer to the 10 classes: 32 -> 15 -> 7 -> 3, 576 -> 10. cuda-convnet also
  had response normalization and average pooling; ``nn`` has max-pooling only, and normalization
  is left out so that the two networks differ in nothing but the activation.
* Same initial weights: for a given seed both networks start from the very same numbers, every
  weight from N(0, 1 / fan-in) (LeCun's scheme, the classic one for tanh, so it favours tanh if
  anything), biases 0; ``--init he`` draws N(0, 2 / fan-in) (He's scheme, made for ReLU) instead,
  again for both. No weight decay, no dropout, no augmentation ("no regularization").
* Training: SGD with momentum 0.9 (§5, with weight decay 0), batch 16, a fixed learning rate.
  The training error of an epoch is the share of mistakes on its batches while training on them
  (what cuda-convnet printed; the paper's figure plots "training error rate" against epochs).
* Learning rates: each activation gets its own from a sweep (seed 0); the fastest rate reaches
  25 % in the fewest epochs (ties and misses: the lower mean error). A sweep run stops as soon as
  it reaches 25 % or can no longer beat the best so far. Then every seed (0 .. seeds - 1) trains
  at the chosen rate, up to ``--epochs``, and (to fit the time of a 2-core machine) stops at the
  epoch that reaches 25 %, which is all the measure needs; ``--full-curves`` runs every seed for
  every epoch instead.

    python benchmarks/figure1_relu_tanh.py --out docs/figures/figure1          # the full run
    python benchmarks/figure1_relu_tanh.py --quick --out /tmp/figure1-quick     # about a minute

From a notebook::

    import figure1_relu_tanh as fig1            # with benchmarks/ on sys.path
    results = fig1.run(fig1.quick_config())     # photos from $ALEXNET_DATA, else synthetic
    fig1.plot(results, "figure1.png")
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere: nn and data are the repository's
    sys.path.insert(0, str(REPO))

import nn  # noqa: E402

nn.configure_blas()  # before NumPy loads (nn/blas.py)

import numpy as np  # noqa: E402

TARGET = 0.25  # §3.1: epochs to 25 % training error
NUM_CLASSES = 10
SIZE = 32  # CIFAR-10's 32 x 32
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


@dataclasses.dataclass
class Config:
    """Everything one run depends on (the JSON keeps it beside the results)."""

    data: str | None = None  # a folder with train/<wnid>/*.JPEG; None: $ALEXNET_DATA/imagenette-224
    # The full run's settings (docs/figure1.md), sized for a shared 2-core machine.
    images_per_class: int = 50
    epochs: int = 30
    seeds: int = 3
    rates_relu: tuple = (0.001, 0.003, 0.01, 0.03)
    rates_tanh: tuple = (0.001, 0.003, 0.01, 0.03)
    batch: int = 16
    init: str = "lecun"  # both networks' weights: "lecun" N(0, 1 / fan-in) or "he" N(0, 2 / fan-in)
    momentum: float = 0.9
    target: float = TARGET
    stop_at_target: bool = True  # False: every final run lasts all the epochs (the full curves)
    synthetic: bool = False  # True: the synthetic set even when photos exist
    cache: str | None = None  # where the 32 x 32 images are kept (default: data.download.cache_dir())
    progress: bool = True


def quick_config(**overrides) -> Config:
    """The short version: 30 photos a class (or synthetic images), seed 0 only, each activation at
    the rate the full run's sweep chose (docs/figure1.md), 12 whole epochs, no sweep."""
    settings = dict(images_per_class=30, epochs=12, seeds=1, rates_relu=(0.003,), rates_tanh=(0.01,),
                    stop_at_target=False)  # fmt: skip
    settings.update(overrides)
    return Config(**settings)


# ---------------------------------------------------------------------------------------------
# Data: Imagenette at 32 x 32 (the stand-in for CIFAR-10), or a synthetic set
# ---------------------------------------------------------------------------------------------


def default_data_folder() -> Path:
    """$ALEXNET_DATA/imagenette-224, else ../shared/data/imagenette-224 beside the repository."""
    root = Path(os.environ.get("ALEXNET_DATA", REPO.parent / "shared" / "data"))
    return root / "imagenette-224"


def load_photos(folder, images_per_class: int, cache=None, progress: bool = True):
    """(images uint8 (N, 32, 32, 3), labels int64 (N,)): the first ``images_per_class`` training
    photos of each of the first 10 classes of ``folder`` (any ``train/<wnid>/`` tree), each
    made 32 x 32 as §2 makes 256 x 256 images (``data.images.load_image_square``).

    Decoded once: the arrays are kept as two .npy files under the cache folder
    (``data.download.cache_dir()``, i.e. $ALEXNET_CACHE or ~/.cache/alexnet-from-scratch), named by
    the folder and the count, and read from there the next time.
    """
    from data.download import cache_dir
    from data.images import load_image_square
    from data.layouts import scan_source

    folder = Path(folder).expanduser().resolve()
    tree = scan_source(folder)
    wnids = tree.wnids("train")[:NUM_CLASSES]
    if len(wnids) < NUM_CLASSES:
        raise ValueError(
            f"{folder}: expected at least {NUM_CLASSES} classes under train/, found {len(wnids)}"
        )
    per_class = {w: [p for p, wnid in tree.splits["train"] if wnid == w][:images_per_class] for w in wnids}
    short = [w for w, paths in per_class.items() if len(paths) < images_per_class]
    if short:
        raise ValueError(
            f"{folder}: --images-per-class {images_per_class} is more than class {short[0]} has "
            f"({len(per_class[short[0]])} training images)"
        )
    key = hashlib.sha256(f"{folder}|{images_per_class}|{SIZE}".encode()).hexdigest()[:16]
    where = cache_dir(cache) / "figure1" / key
    images_file, labels_file = where / "images.npy", where / "labels.npy"
    if images_file.exists() and labels_file.exists():
        return np.load(images_file), np.load(labels_file)
    paths = [(p, c) for c, w in enumerate(wnids) for p in per_class[w]]
    images = np.empty((len(paths), SIZE, SIZE, 3), dtype=np.uint8)
    for i, (path, _) in enumerate(_bar(paths, progress, desc="32 x 32 photos", unit="img")):
        images[i] = load_image_square(path, SIZE)
    labels = np.array([c for _, c in paths], dtype=np.int64)
    from nn.serialization import atomic_write

    for file, array in ((images_file, images), (labels_file, labels)):
        with atomic_write(file) as handle:  # a killed run leaves no half-written cache behind
            np.save(handle, array)
    return images, labels


def synthetic_images(images_per_class: int, seed: int = 0, noise: float = 48.0):
    """A 10-class stand-in when no photos are at hand: each class is a random 8 x 8 colour pattern
    blown up to 32 x 32, and each image that pattern shifted by up to 2 pixels, plus pixel noise.
    Learnable, but not in one epoch (at the default ``noise``). Same layout as ``load_photos``."""
    rng = np.random.default_rng(seed)
    patterns = np.kron(rng.uniform(0, 255, (NUM_CLASSES, 8, 8, 3)), np.ones((1, 4, 4, 1)))
    labels = np.repeat(np.arange(NUM_CLASSES), images_per_class)
    shifts = rng.integers(-2, 3, size=(len(labels), 2))
    images = np.stack([np.roll(patterns[c], tuple(s), axis=(0, 1)) for c, s in zip(labels, shifts)])
    images = images + rng.normal(0, noise, images.shape)
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


def get_data(config: Config):
    """(images, labels, description): the photos when the folder exists, else the synthetic set."""
    folder = Path(config.data).expanduser() if config.data else default_data_folder()
    if not config.synthetic and (folder / "train").is_dir():
        images, labels = load_photos(folder, config.images_per_class, config.cache, config.progress)
        return images, labels, f"photos: {folder} at 32 x 32"
    if config.data and not config.synthetic:
        raise FileNotFoundError(f"--data {folder}: expected a folder with train/<wnid>/ image folders")
    images, labels = synthetic_images(config.images_per_class)
    reason = "asked for" if config.synthetic else f"no photos in {folder}"
    return images, labels, f"synthetic ({reason})"


def to_network_input(images) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W): minus the per-pixel mean image (§2), divided
    by the standard deviation of what is left (so that N(0, 1 / fan-in) weights suit it)."""
    x = images.astype(np.float32).transpose(0, 3, 1, 2)
    x -= x.mean(axis=0)
    x /= x.std()
    return np.ascontiguousarray(x)


# ---------------------------------------------------------------------------------------------
# The network, the measures, one training run
# ---------------------------------------------------------------------------------------------


INIT_GAIN = {"lecun": 1.0, "he": 2.0}  # weight variance = gain / fan-in


def build_network(activation: str, seed: int, init: str = "lecun") -> nn.Sequential:
    """cuda-convnet's CIFAR-10 layout (three conv layers and one fully connected: four layers),
    with ``activation`` after every conv layer. The same seed gives both activations the same
    initial weights: N(0, gain / fan-in) for every weight (gain 1: LeCun, 2: He), 0 for every bias."""
    act = ACTIVATIONS[activation]
    rng = np.random.default_rng(seed)
    # fmt: off
    net = nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2, rng=rng, input_grad=False), act(), nn.MaxPool2d(3, 2),  # 32 -> 15
        nn.Conv2d(32, 32, 5, padding=2, rng=rng), act(), nn.MaxPool2d(3, 2),                   # 15 -> 7
        nn.Conv2d(32, 64, 5, padding=2, rng=rng), act(), nn.MaxPool2d(3, 2),                   # 7 -> 3
        nn.Flatten(),
        nn.Linear(64 * 3 * 3, NUM_CLASSES, rng=rng),
    )
    # fmt: on
    for layer in net:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            std = np.sqrt(INIT_GAIN[init] / nn.init.fan_in(layer.weight.shape))
            nn.init.normal_(layer.weight, std, rng)
            nn.init.constant_(layer.bias, 0.0)
    return net


def error_rate(logits, labels) -> float:
    """The share of examples whose highest-scoring class is not their label (top-1 error)."""
    return float(np.mean(np.asarray(logits).argmax(axis=1) != np.asarray(labels)))


def epochs_to(curve, target: float = TARGET):
    """The first epoch (counted from 1) whose training error is at most ``target``; None if none."""
    hits = [epoch for epoch, error in enumerate(curve, start=1) if error <= target]
    return hits[0] if hits else None


def train(
    x, y, activation: str, lr: float, seed: int, config: Config, stop_at_target=False, give_up_after=None
):
    """Train one network for up to ``config.epochs``; returns {"errors": per-epoch training error,
    "losses", "diverged"}. ``stop_at_target``: stop at the first epoch that reaches the target;
    ``give_up_after``: stop after that many epochs without reaching it (the sweep's shortcut: the
    run can no longer beat the best so far). A loss that is not finite ends the run (diverged)."""
    net = build_network(activation, seed, config.init)
    loss_fn = nn.SoftmaxCrossEntropyLoss()
    opt = nn.SGD(net.parameters(), lr=lr, momentum=config.momentum, weight_decay=0.0)
    order_rng = np.random.default_rng(1000 + seed)  # the batch order: the same for both activations
    errors, losses, diverged = [], [], False
    bar = _bar(range(config.epochs), config.progress, desc=f"{activation} lr {lr:g} seed {seed}", leave=False)
    for _ in bar:
        wrong, total = 0, 0.0
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), config.batch):
            idx = order[start : start + config.batch]
            logits = net(x[idx])
            loss = loss_fn.forward(logits, y[idx])
            if not np.isfinite(loss):
                diverged = True
                break
            wrong += error_rate(logits, y[idx]) * len(idx)
            total += loss * len(idx)
            opt.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()
        if diverged:
            break
        errors.append(wrong / len(x))
        losses.append(total / len(x))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(error=f"{errors[-1]:.3f}")
        if stop_at_target and errors[-1] <= config.target:
            break
        if give_up_after is not None and len(errors) >= give_up_after:
            break
    return {"errors": errors, "losses": losses, "diverged": diverged}


def sweep_key(run) -> tuple:
    """Smaller is faster: epochs to the target (never = infinity), then the mean training error."""
    reached = epochs_to(run["errors"])
    mean = float(np.mean(run["errors"])) if run["errors"] and not run["diverged"] else np.inf
    return (reached if reached is not None else np.inf, mean)


# ---------------------------------------------------------------------------------------------
# The whole experiment
# ---------------------------------------------------------------------------------------------


def run(config: Config | None = None, **overrides) -> dict:
    """Sweep each activation's learning rate, train every seed at the fastest one, and return every
    number (JSON-ready): see the module docstring. ``run(quick_config())`` is the short version."""
    config = dataclasses.replace(config or Config(), **overrides)
    _validate(config)
    started = time.perf_counter()
    images, labels, source = get_data(config)
    x, y = to_network_input(images), labels
    results = {"config": dataclasses.asdict(config), "data": source, "images": len(y), "activations": {}}
    for activation in ACTIVATIONS:
        rates = list(getattr(config, f"rates_{activation}"))
        sweep, best = {}, None
        for lr in _middle_out(rates):
            if len(rates) == 1:  # nothing to choose: the run is seed 0's final run
                sweep[lr] = train(x, y, activation, lr, 0, config, stop_at_target=config.stop_at_target)
            else:
                limit = _sweep_limit(best, sweep, config)
                sweep[lr] = train(x, y, activation, lr, 0, config, stop_at_target=True, give_up_after=limit)
            if best is None or sweep_key(sweep[lr]) < sweep_key(sweep[best]):
                best = lr
        # The best sweep run is seed 0's final run when final runs stop at the target too, or when
        # it lasted every epoch; otherwise seed 0 is trained again for the whole length.
        reuse = (
            config.stop_at_target or len(sweep[best]["errors"]) == config.epochs or sweep[best]["diverged"]
        )
        runs = [sweep[best]] if reuse else []
        for seed in range(len(runs), config.seeds):
            runs.append(train(x, y, activation, best, seed, config, stop_at_target=config.stop_at_target))
        reached = [epochs_to(r["errors"], config.target) for r in runs]
        results["activations"][activation] = {
            "sweep": {
                str(lr): {**r, "epochs_to_target": epochs_to(r["errors"], config.target)}
                for lr, r in sweep.items()
            },
            "rate": best,
            "rate_at_edge_of_sweep": len(rates) > 1 and best in (min(rates), max(rates)),
            "seeds": [{**r, "seed": s, "epochs_to_target": e} for s, (r, e) in enumerate(zip(runs, reached))],
            "epochs_to_target": reached,
            "median_epochs_to_target": _median(reached),
        }
        _say(config, f"{activation}: rate {best:g}, epochs to {config.target:.0%} per seed {reached}")
    relu, tanh = (results["activations"][a]["median_epochs_to_target"] for a in ("relu", "tanh"))
    results["ratio_tanh_over_relu"] = tanh / relu if relu and tanh else None
    results["ratio_note"] = _ratio_note(relu, tanh, config)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    _say(config, results["ratio_note"] + f" ({results['wall_seconds']:.0f} s)")
    return results


def _middle_out(rates):
    """The rates from the middle of the sweep outwards (0.01, 0.03, 0.1, 0.003 for 0.003 .. 0.1):
    a good rate found early lets the others give up early."""
    logs = np.log(sorted(rates))
    middle = (logs[0] + logs[-1]) / 2
    return sorted(rates, key=lambda rate: (abs(np.log(rate) - middle), rate))


def _sweep_limit(best, sweep, config):
    """A sweep run may stop once it cannot beat the best so far: after the best's epochs to the target."""
    reached = epochs_to(sweep[best]["errors"], config.target) if best is not None else None
    return reached if reached is not None else config.epochs


def _median(values):
    """Median epochs over seeds; None unless every seed reached the target (an unreached one has no
    epoch count to rank)."""
    return None if not values or None in values else float(statistics.median(values))


def _ratio_note(relu, tanh, config) -> str:
    if relu and tanh:
        return f"median epochs to {config.target:.0%}: ReLU {relu:g}, tanh {tanh:g}: tanh / ReLU = {tanh / relu:.2f}"
    if relu:
        return (
            f"ReLU reached {config.target:.0%} in {relu:g} epochs (median); tanh not in every seed within "
            f"{config.epochs}: tanh / ReLU > {config.epochs / relu:.1f}"
        )
    if tanh:
        return (
            f"tanh reached {config.target:.0%} in {tanh:g} epochs (median); ReLU not in every seed within "
            f"{config.epochs}: tanh / ReLU < {tanh / config.epochs:.2f}"
        )
    return f"neither reached {config.target:.0%} in every seed within {config.epochs} epochs: no ratio"


def _validate(config: Config) -> None:
    for name in ("images_per_class", "epochs", "seeds", "batch"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {getattr(config, name)!r}")
    for name in ("rates_relu", "rates_tanh"):
        rates = getattr(config, name)
        if not rates or any(not rate > 0 for rate in rates):
            raise ValueError(f"{name} must be one or more learning rates > 0, got {rates!r}")
    if config.init not in INIT_GAIN:
        raise ValueError(f"init must be one of {sorted(INIT_GAIN)}, got {config.init!r}")
    if not 0 < config.target < 1:
        raise ValueError(f"target must lie between 0 and 1, got {config.target!r}")


def table(results: dict) -> str:
    """The results as a Markdown table: each activation's sweep, chosen rate, and epochs to the target."""
    target = f"{results['config']['target']:.0%}"
    lines = [
        f"| activation | sweep: rate (epochs to {target}, seed 0) | chosen rate | epochs to {target} per seed | median |",
        "|---|---|---|---|---|",
    ]
    for activation, entry in results["activations"].items():
        sweep = ", ".join(
            f"{lr} ({_epochs(run['epochs_to_target'])})"
            for lr, run in sorted(entry["sweep"].items(), key=lambda kv: float(kv[0]))
        )
        seeds = ", ".join(_epochs(run["epochs_to_target"]) for run in entry["seeds"])
        median = entry["median_epochs_to_target"]
        name = {"relu": "ReLU", "tanh": "tanh"}[activation]
        lines.append(f"| {name} | {sweep} | {entry['rate']:g} | {seeds} | {_epochs(median)} |")
    ratio = results["ratio_tanh_over_relu"]
    lines.append(f"\ntanh / ReLU (median epochs): {ratio:.2f}" if ratio else f"\n{results['ratio_note']}")
    return "\n".join(lines)


def _epochs(value) -> str:
    return "-" if value is None else f"{value:g}"


# ---------------------------------------------------------------------------------------------
# The figure
# ---------------------------------------------------------------------------------------------


def plot(results: dict, path) -> str:
    """Training error rate against epochs like Figure 1: ReLU solid, tanh dashed, the 25 % line.
    Thin lines are the seeds, thick ones the median over seeds per epoch. Writes a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = results["config"]["target"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for activation, style, label in (("relu", "-", "ReLU"), ("tanh", "--", "tanh")):
        entry = results["activations"][activation]
        curves = [r["errors"] for r in entry["seeds"]]
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), curve, style, color="k", lw=0.6, alpha=0.35)
        median = _median_curve(curves)
        reached = entry["median_epochs_to_target"]
        note = f"{reached:g} epochs" if reached else "not reached"
        ax.plot(range(1, len(median) + 1), median, style, color="k", lw=2,
                label=f"{label}, lr {entry['rate']:g} ({target:.0%} at {note})")  # fmt: skip
    ax.axhline(target, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("Epochs")
    ax.set_ylabel("Training error rate")
    ax.set_ylim(0, 0.95)
    ratio = results["ratio_tanh_over_relu"]
    seeds = len(results["activations"]["relu"]["seeds"])
    title = f"tanh / ReLU = {ratio:.2f}" if ratio else "no ratio (see the JSON)"
    data = results["data"]  # "photos: FOLDER at 32 x 32" or "synthetic (why)"
    kind = (
        f"{Path(data[len('photos: ') :].rsplit(' at ', 1)[0]).name} photos"
        if data.startswith("photos")
        else "synthetic"
    )
    ax.set_title(f"{results['images']} {kind}, 32 x 32, {seeds} seed(s): {title}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _median_curve(curves):
    """Per-epoch median over the seeds, as long as every seed's curve lasts (a diverged one ends early)."""
    length = min(len(c) for c in curves) if curves else 0
    return [float(np.median([c[i] for c in curves])) for i in range(length)]


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def _bar(iterable, progress, **kwargs):
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, file=sys.stderr, **kwargs)


def _say(config, message):
    if config.progress:
        print(message, file=sys.stderr, flush=True)


def _rates(text):
    try:
        rates = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected learning rates separated by commas, got {text!r}"
        ) from None
    if any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError(f"learning rates must be > 0, got {text!r}")
    return rates


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--data", help="folder with train/<wnid>/ photos (default $ALEXNET_DATA/imagenette-224); "
                   "synthetic images when the default is absent")  # fmt: skip
    p.add_argument("--synthetic", action="store_true", help="use the synthetic set even if photos exist")
    p.add_argument("--out", required=True, help="output prefix: writes OUT.png and OUT.json")
    p.add_argument("--epochs", type=_positive, help=f"epochs per run (default {defaults.epochs})")
    p.add_argument("--seeds", type=_positive, help=f"seeds of the final curves (default {defaults.seeds})")
    p.add_argument(
        "--rates-relu", type=_rates, help=f"ReLU's sweep, e.g. 0.01,0.03 (default {defaults.rates_relu})"
    )
    p.add_argument("--rates-tanh", type=_rates, help=f"tanh's sweep (default {defaults.rates_tanh})")
    p.add_argument("--images-per-class", type=_positive, help=f"default {defaults.images_per_class}")
    p.add_argument("--batch", type=_positive, help=f"default {defaults.batch}")
    p.add_argument("--init", choices=sorted(INIT_GAIN), help="both networks' initial weights (default lecun)")
    p.add_argument(
        "--full-curves", action="store_true", help="final runs last every epoch (default: stop at 25 %%)"
    )
    p.add_argument("--quick", action="store_true", help="the short version (quick_config: about a minute)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    config = quick_config() if args.quick else Config()
    for name in ("data", "epochs", "seeds", "rates_relu", "rates_tanh", "images_per_class", "batch", "init"):
        if getattr(args, name) is not None:
            config = dataclasses.replace(config, **{name: getattr(args, name)})
    config = dataclasses.replace(config, synthetic=args.synthetic, progress=not args.no_progress)
    if args.full_curves:
        config = dataclasses.replace(config, stop_at_target=False)
    try:
        results = run(config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"figure1_relu_tanh: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    from nn.serialization import atomic_write

    with atomic_write(out.with_suffix(".json"), "w") as handle:
        json.dump(results, handle, indent=1)
    plot(results, out.with_suffix(".png"))
    print(table(results))
    print(
        f"{results['data']}; {results['ratio_note']}; wrote {out.with_suffix('.png')} and {out.with_suffix('.json')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
