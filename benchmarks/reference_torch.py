"""A PyTorch (CPU) reference for the reduced-scale recipe (docs/recipe.md).

The same network, optimizer, schedule and data as ``python -m alexnet train``, written
independently in PyTorch so that the two learning curves can be laid side by side:

* network (§3.5): conv1 96x11x11/4 -> ReLU -> LRN -> maxpool 3/2; conv2 256x5x5 pad 2,
  groups 2 -> ReLU -> LRN -> maxpool 3/2; conv3 384x3x3 pad 1; conv4 384x3x3 pad 1 groups 2;
  conv5 256x3x3 pad 1 groups 2 -> maxpool 3/2; fc6 4096 -> ReLU -> dropout 0.5; fc7 4096 ->
  ReLU -> dropout 0.5; fc8. ``torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2)``
  divides alpha by n, so it is the paper's alpha = 1e-4 on the plain sum (§3.3). fc6's input
  size is computed from the crop (crop 112 -> 256 x 2 x 2 after pool5).
* init (§5) ``paper``: every weight N(0, 0.01); biases 1 in conv2, conv4, conv5, fc6, fc7,
  0 in conv1, conv3, fc8. ``kaiming``: every weight N(0, 2 / fan_in) (fan_in = in_channels /
  groups * kh * kw, or in_features; fc8 included), biases 0 -- the same rule as nn.init.
* update (§5), written by hand under ``torch.no_grad()``, not ``torch.optim.SGD``:
      v <- 0.9 v - 0.0005 lr w - lr g ;  w <- w + v     (weight decay on biases too)
  ``torch.optim.SGD(momentum=0.9, weight_decay=5e-4)`` keeps v' <- 0.9 v' + g + wd w and steps
  w <- w - lr v'; with a constant lr that is the same sequence of weights (v = -lr v'), but
  when lr is divided by 10 torch's step shrinks at once, the paper's only as v decays.
* schedule: §5's plateau rule as in ``nn.ReduceLROnPlateau`` (divide lr by 10 after two
  epochs whose val top-1 error does not beat the best by 1e-4; at most three times).
* data: OUR ``data.PreparedDataset`` and ``data.Loader`` (random crops, reflections, PCA
  lighting, mean image subtracted, divided by ``--input-scale``; centre crops for val), the
  NumPy batches wrapped with ``torch.from_numpy``; the same seed gives the same batches as
  our trainer. Only the weights' and dropout's random numbers differ (torch's generator).
* log: ``--out/log.jsonl``, one line per epoch with our trainer's keys (epoch, lr,
  train_loss, train_top1_error, train_top5_error, val_loss, val_top1_error, val_top5_error,
  images_per_s, seconds). Train statistics are those of the training-mode forward pass of
  each batch before its update (as ours); images_per_s counts training only, seconds the
  whole epoch including validation.

``--check-against-ours`` builds our ``alexnet.AlexNet`` too, copies its weights into the torch
net and compares the logits, the loss and every weight gradient on one real batch (dropout
off), then one SGD step: a direct test that the two implementations compute the same thing.

    python benchmarks/reference_torch.py --data /work/runs/imagenette-128 --crop 112 \\
        --init kaiming --input-scale 64 --epochs 5 --out /work/runs/torch-kaiming
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import data  # noqa: E402  (our data package: identical pipelines for both implementations)

CONV = (  # name, out, kernel, stride, padding, groups
    ("conv1", 96, 11, 4, 0, 1),
    ("conv2", 256, 5, 1, 2, 2),
    ("conv3", 384, 3, 1, 1, 1),
    ("conv4", 384, 3, 1, 1, 2),
    ("conv5", 256, 3, 1, 1, 2),
)
POOLED = ("conv1", "conv2", "conv5")
NORMED = ("conv1", "conv2")
BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")


def out_side(side, kernel, stride, padding=0):
    return (side + 2 * padding - kernel) // stride + 1


def pool5_side(crop):
    side = crop
    for name, _, k, s, p, _ in CONV:
        side = out_side(side, k, s, p)
        if name in POOLED:
            side = out_side(side, 3, 2)
    if side < 1:
        raise ValueError(f"crop {crop} leaves no feature map after pool5")
    return side


class AlexNetTorch(tnn.Module):
    def __init__(self, num_classes, crop, dropout=0.5):
        super().__init__()
        layers, c = [], 3
        for name, out, k, s, p, g in CONV:
            conv = tnn.Conv2d(c, out, k, stride=s, padding=p, groups=g)
            setattr(self, name, conv)
            layers += [conv, tnn.ReLU()]
            if name in NORMED:
                layers.append(tnn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0))
            if name in POOLED:
                layers.append(tnn.MaxPool2d(3, 2))
            c = out
        self.features = tnn.Sequential(*layers)
        side = pool5_side(crop)
        self.fc6 = tnn.Linear(c * side * side, 4096)
        self.fc7 = tnn.Linear(4096, 4096)
        self.fc8 = tnn.Linear(4096, num_classes)
        self.classifier = tnn.Sequential(
            tnn.Flatten(),
            self.fc6,
            tnn.ReLU(),
            tnn.Dropout(dropout),
            self.fc7,
            tnn.ReLU(),
            tnn.Dropout(dropout),
            self.fc8,
        )

    def learned(self):
        return [
            (n, getattr(self, n)) for n in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
        ]

    def reset(self, scheme, generator):
        with torch.no_grad():
            for name, layer in self.learned():
                if scheme == "paper":
                    layer.weight.normal_(0.0, 0.01, generator=generator)
                    layer.bias.fill_(1.0 if name in BIAS_ONE else 0.0)
                elif scheme == "kaiming":
                    fan_in = layer.weight[0].numel()  # in/groups * kh * kw, or in_features
                    layer.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                    layer.bias.zero_()
                else:
                    raise ValueError(f"--init must be paper or kaiming, got {scheme!r}")
        return self

    def forward(self, x):
        return self.classifier(self.features(x))


class PaperSGD:
    """§5: v <- m v - wd lr w - lr g ; w <- w + v (every parameter, biases included)."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=5e-4):
        self.params = [p for p in params]
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self):
        for p, v in zip(self.params, self.v):
            v.mul_(self.momentum).add_(p, alpha=-self.weight_decay * self.lr).add_(p.grad, alpha=-self.lr)
            p.add_(v)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class Plateau:
    """§5 automated as nn.ReduceLROnPlateau(factor=0.1, patience=1, threshold=1e-4, max_reductions=3)."""

    def __init__(self, opt, factor=0.1, patience=1, threshold=1e-4, max_reductions=3):
        self.opt, self.factor, self.patience, self.threshold = opt, factor, patience, threshold
        self.max_reductions, self.best, self.bad, self.reductions, self.finished = (
            max_reductions,
            math.inf,
            0,
            0,
            False,
        )

    def step(self, err):
        if err < self.best - self.threshold:
            self.best, self.bad = err, 0
            return
        self.bad += 1
        if self.bad > self.patience:
            self.bad = 0
            if self.reductions < self.max_reductions:
                self.opt.lr *= self.factor
                self.reductions += 1
            else:
                self.finished = True


class Stats:
    def __init__(self):
        self.loss_sum, self.top1, self.top5, self.n = 0.0, 0, 0, 0

    def update(self, loss, logits, y):
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hit = top == y[:, None]
        self.loss_sum += float(loss) * len(y)
        self.top1 += int(hit[:, :1].any(1).sum())
        self.top5 += int(hit.any(1).sum())
        self.n += len(y)

    def result(self):
        return self.loss_sum / self.n, 1 - self.top1 / self.n, 1 - self.top5 / self.n


def batches(loader, max_batches):
    for k, (x, y) in enumerate(loader):
        if max_batches and k >= max_batches:
            break
        yield torch.from_numpy(x), torch.from_numpy(y)


def train_epoch(model, opt, loader, epoch, max_batches=0, clock=None):
    """One pass of training over ``loader``'s current epoch; returns (Stats, images, diverged)
    with ``diverged`` = (step, loss) at a non-finite loss (the pass stops there), else None.
    ``clock``: an ``alexnet.train.LoopClock`` (or anything with its ``record``) gets the seconds of
    each step's parts: waiting for data, the SGD step, the statistics, the progress line."""
    stats, images = Stats(), 0
    start = tick = time.perf_counter()
    for step, (x, y) in enumerate(batches(loader, max_batches)):
        got_batch = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if not math.isfinite(loss.item()):
            return stats, images, (step, loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        stepped = time.perf_counter()
        stats.update(loss.detach(), logits.detach(), y)
        counted = time.perf_counter()
        images += len(y)
        if step % 10 == 0:
            rate = images / (time.perf_counter() - start)
            print(
                f"  epoch {epoch + 1} step {step + 1}: loss {stats.loss_sum / stats.n:.4f} {rate:.1f} img/s",
                file=sys.stderr,
                flush=True,
            )
        if clock is not None:
            tick = clock.record(tick, got_batch, stepped, counted)
    return stats, images, None


def evaluate(model, loader, max_batches):
    model.eval()
    stats = Stats()
    with torch.no_grad():
        for x, y in batches(loader, max_batches):
            logits = model(x)
            stats.update(F.cross_entropy(logits, y), logits, y)
    model.train()
    return stats.result()


def copy_from_ours(model, num_classes, args, dtype=np.float32):
    """Give ``model`` the initial weights of ``alexnet.AlexNet(init=args.init, seed=args.seed)``."""
    from alexnet import AlexNet

    ours = AlexNet(
        num_classes=num_classes,
        crop=args.crop,
        groups=2,
        init=args.init,
        dropout=0.0,
        dtype=dtype,
        seed=args.seed,
    )
    params = dict(ours.named_parameters())
    with torch.no_grad():
        for name, layer in model.learned():
            layer.weight.copy_(torch.from_numpy(np.asarray(params[f"{name}.weight"].data)))
            layer.bias.copy_(torch.from_numpy(np.asarray(params[f"{name}.bias"].data)))
    return ours


def training_loader(args, train_set, **options):
    """The augmented training batches that ``args`` describe (``options``: more of data.Loader's)."""
    return data.Loader(
        train_set,
        args.batch_size,
        crop=args.crop,
        train=True,
        seed=args.seed,
        input_scale=args.input_scale,
        lighting_std=args.lighting_std,
        **options,
    )


def check_against_ours(args, train_set):
    """Same weights, same batch: compare logits, loss, gradients and one SGD step with alexnet.AlexNet."""
    from nn import SGD, SoftmaxCrossEntropyLoss

    dtype = np.dtype(args.check_dtype)
    ref = AlexNetTorch(train_set.num_classes, args.crop, dropout=0.0).to(getattr(torch, dtype.name))
    ours = copy_from_ours(ref, train_set.num_classes, args, dtype)
    params = dict(ours.named_parameters())
    x, y = next(iter(training_loader(args, train_set)))
    x = x.astype(dtype)
    ours.train()
    crit = SoftmaxCrossEntropyLoss()
    logits = ours.forward(x)
    loss = crit.forward(logits, y)
    ours.zero_grad()
    ours.backward(crit.backward())
    tl = ref(torch.from_numpy(x))
    tloss = F.cross_entropy(tl, torch.from_numpy(y))
    tloss.backward()

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    print(
        f"batch {tuple(x.shape)}, input range [{x.min():.1f}, {x.max():.1f}], init {args.init}, "
        f"input scale {args.input_scale:g}"
    )
    print(f"loss: ours {loss:.6f}  torch {tloss.item():.6f}")
    print(f"logits: max |diff| / max |torch| = {rel(logits, tl.detach().numpy()):.2e}")
    worst = 0.0
    for name, layer in ref.learned():
        for kind in ("weight", "bias"):
            r = rel(params[f"{name}.{kind}"].grad, getattr(layer, kind).grad.numpy())
            worst = max(worst, r)
            print(
                f"  d{name}.{kind:6s} rel diff {r:.2e}  (|g|max torch {getattr(layer, kind).grad.abs().max().item():.3e})"
            )
    opt_ours = SGD(ours.parameters(), lr=args.lr)
    opt_ref = PaperSGD(ref.parameters(), lr=args.lr)
    opt_ours.step()
    opt_ref.step()
    step = max(
        rel(params[f"{n}.{k}"].data, getattr(layer, k).detach().numpy())
        for n, layer in ref.learned()
        for k in ("weight", "bias")
    )
    print(f"after one SGD step: worst weight rel diff {step:.2e}")
    # float32: gradients below the pooling/ReLU layers differ by ~2e-3 of their largest entry (rounding
    # near ties flips a few max-pool/ReLU decisions); float64 agrees to ~1e-14.
    tol = 1e-2 if dtype == np.float32 else 1e-9
    print(f"worst gradient rel diff {worst:.2e} ({dtype.name}): {'AGREE' if worst < tol else 'DIFFER'}")
    return 0 if worst < tol else 1


def bench(args, train_set, steps):
    """Training steps per second of ours and of the torch net, interleaved on one real batch."""
    from alexnet import AlexNet
    from nn import SGD, SoftmaxCrossEntropyLoss

    x, y = next(iter(training_loader(args, train_set)))
    ours = AlexNet(num_classes=train_set.num_classes, crop=args.crop, init=args.init, seed=args.seed)
    crit, opt = SoftmaxCrossEntropyLoss(), SGD(ours.parameters(), lr=args.lr)
    ref = AlexNetTorch(train_set.num_classes, args.crop).reset(args.init, torch.Generator().manual_seed(0))
    topt = PaperSGD(ref.parameters(), args.lr)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step_ours():
        crit.forward(ours.forward(x), y)
        opt.zero_grad()
        ours.backward(crit.backward())
        opt.step()

    def step_torch():
        loss = F.cross_entropy(ref(tx), ty)
        topt.zero_grad()
        loss.backward()
        topt.step()

    times = {"ours": [], "torch": []}
    for fn in (step_ours, step_torch):  # warm-up
        fn()
    for _ in range(steps):
        for name, fn in (("ours", step_ours), ("torch", step_torch)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    result = {}
    for name, ts in times.items():
        med = float(np.median(ts))
        result[name] = {"median_s_per_step": med, "images_per_s": len(y) / med, "steps_s": ts}
        print(
            f"{name:5s}: median {med:.2f} s per step of {len(y)} -> {len(y) / med:.1f} images/s "
            f"(steps: {', '.join(f'{t:.2f}' for t in ts)})"
        )
    print(
        f"torch / ours time: {result['ours']['median_s_per_step'] / result['torch']['median_s_per_step']:.2f}x "
        f"(BLAS threads: torch {torch.get_num_threads()}, NumPy per OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')})"
    )
    return result


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--data", required=True, help="a prepared subset (python -m data prepare ...)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--init", choices=["paper", "kaiming"], default="kaiming")
    p.add_argument("--input-scale", type=float, default=64.0)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("-b", "--batch-size", type=int, default=128)
    p.add_argument("--crop", type=int, default=112)
    p.add_argument(
        "--seed", type=int, default=0, help="data order/augmentation (as ours) and torch's generator"
    )
    p.add_argument(
        "--lighting-std",
        type=float,
        default=0.1,
        help="std of the PCA colour-shift coefficients (§4.1: 0.1; 0 disables), passed to data.Loader",
    )
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument(
        "--workers", type=int, default=None, help="data loader threads (default: up to 2, as ours)"
    )
    p.add_argument("--out", default=None, help="folder for log.jsonl (required unless --check-against-ours)")
    p.add_argument(
        "--max-batches",
        type=int,
        default=0,
        help="at most this many batches per epoch and per val pass (0: all)",
    )
    p.add_argument(
        "--check-against-ours",
        action="store_true",
        help="compare one forward/backward/step with alexnet.AlexNet on the same weights and exit",
    )
    p.add_argument(
        "--same-init-as-ours",
        action="store_true",
        help="start from the initial weights of alexnet.AlexNet(init=--init, seed=--seed) instead of "
        "torch's own draw (then only dropout masks and rounding differ from our run)",
    )
    p.add_argument(
        "--bench",
        type=int,
        default=0,
        metavar="STEPS",
        help="time STEPS training steps (forward, loss, backward, SGD) of ours and of torch, "
        "interleaved on one real batch, print images/s and exit",
    )
    p.add_argument(
        "--check-dtype",
        choices=["float32", "float64"],
        default="float32",
        help="precision of --check-against-ours (float64 separates rounding from real differences)",
    )
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_set = data.PreparedDataset(args.data, "train")
    val_set = data.PreparedDataset(args.data, "val")
    if args.check_against_ours:
        return check_against_ours(args, train_set)
    if args.bench:
        result = bench(args, train_set, args.bench)
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0
    if not args.out:
        p.error("--out is required")

    gen = torch.Generator().manual_seed(args.seed)
    model = AlexNetTorch(train_set.num_classes, args.crop).reset(args.init, gen)
    if args.same_init_as_ours:
        copy_from_ours(model, train_set.num_classes, args)
    opt = PaperSGD(model.parameters(), args.lr, args.momentum, args.wd)
    schedule = Plateau(opt)
    loader = training_loader(args, train_set, workers=args.workers)
    val_loader = data.Loader(
        val_set,
        args.batch_size,
        crop=args.crop,
        train=False,
        input_scale=args.input_scale,
        workers=args.workers,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.jsonl"
    log_path.write_text("")
    (out / "args.json").write_text(json.dumps(vars(args), indent=1) + "\n")
    nparams = sum(q.numel() for q in model.parameters())
    print(
        f"torch {torch.__version__} reference AlexNet: {len(train_set)} train / {len(val_set)} val, "
        f"{train_set.num_classes} classes, crop {args.crop} (pool5 {pool5_side(args.crop)}x{pool5_side(args.crop)}), "
        f"{nparams:,} parameters, init {args.init}, input scale {args.input_scale:g}, lr {args.lr:g}, "
        f"batch {args.batch_size}, {torch.get_num_threads()} threads",
        file=sys.stderr,
        flush=True,
    )
    model.train()
    for epoch in range(args.epochs):
        lr = opt.lr
        t0 = time.perf_counter()
        loader.set_epoch(epoch)
        stats, images, diverged = train_epoch(model, opt, loader, epoch, args.max_batches)
        if diverged is not None:
            print(
                f"non-finite loss {diverged[1]} at epoch {epoch + 1}, step {diverged[0] + 1}: diverged",
                file=sys.stderr,
            )
            with open(log_path, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "epoch": epoch + 1,
                            "lr": lr,
                            "diverged_at_step": diverged[0] + 1,
                            "train_loss": None,
                        }
                    )
                    + "\n"
                )
            return 3
        train_s = time.perf_counter() - t0
        tr_loss, tr1, tr5 = stats.result()
        va_loss, va1, va5 = evaluate(model, val_loader, args.max_batches)
        record = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": tr_loss,
            "train_top1_error": tr1,
            "train_top5_error": tr5,
            "val_loss": va_loss,
            "val_top1_error": va1,
            "val_top5_error": va5,
            "images_per_s": images / train_s,
            "seconds": time.perf_counter() - t0,
        }
        with open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(
            f"epoch {epoch + 1} lr {lr:.2g} train loss {tr_loss:.4f} top-1 err {100 * tr1:.1f}% "
            f"top-5 err {100 * tr5:.1f}% | val loss {va_loss:.4f} top-1 err {100 * va1:.1f}% "
            f"top-5 err {100 * va5:.1f}% | {record['images_per_s']:.1f} img/s, {record['seconds']:.0f} s",
            flush=True,
        )
        schedule.step(va1)
        if schedule.finished:
            print("val error stalled after three reductions: stopping (§5)", file=sys.stderr)
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
