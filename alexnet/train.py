"""Training AlexNet (§5) on a prepared subset, with checkpoints that lose nothing.

One epoch:

    for each batch (x, y) of random crops, reflections and PCA lighting (§4.1):
        logits = model.forward(x)                          # §3.5
        loss   = softmax cross-entropy(logits, y)          # multinomial logistic regression
        model.backward(dL/dlogits)                         # accumulates dL/dw
        SGD step: v <- 0.9 v - 0.0005 eps w - eps dL/dw;  w <- w + v        (§5)
    validate on the centre crops, then
    divide eps by 10 when the validation error stops improving (at most 3 times, §5)

After every epoch ``--out`` gets ``checkpoint.npz`` (everything: weights, velocities,
schedule, dropout generators, the loader's epoch, the arguments, the history),
``best.npz`` when the validation top-1 error improved, ``log.jsonl`` (one line per
epoch) and ``curves.png``. Ctrl-C or SIGTERM finishes the current step, writes a
mid-epoch checkpoint and exits; ``--resume`` continues exactly where it stopped
(on the CPU with the same seed, the final weights equal those of a run never
interrupted). A non-finite loss stops training at once, naming the epoch and the
step, and leaves the last good checkpoint as it was.

Under ``mpiexec -n N`` the same command trains data-parallel (alexnet/parallel/): ``-b`` is
the global batch, each rank computes its share, gradients are averaged with one all-reduce per
step, and only rank 0 prints and writes files. An exception on any rank aborts every rank.
"""
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import data
from nn import SGD, ReduceLROnPlateau, SoftmaxCrossEntropyLoss, StepLR, check_device

from .checkpoint import load_checkpoint, save_checkpoint
from .datasets import check_crop, open_split, resolve_data
from .metrics import RunningStats
from .model import AlexNet
from .parallel import DataParallel, abort_on_error, check_global_batch, get_communicator, select_gpu
from .plots import plot_curves
from .resume import (CHANGEABLE, CHECKED, RECORDED, check_data_still_there, check_resume_flags,
                     check_same_subset, given_options, lr_notes, saved_arguments, subset_fingerprint)
from .rundir import SaveFailed, guarded_out, saving

EXIT_NONFINITE = 3
EXIT_SAVE_FAILED = 74  # EX_IOERR: a checkpoint, log or figure could not be written
EXIT_INTERRUPTED = 130


class NonFiniteLoss(RuntimeError):
    def __init__(self, epoch, step, loss):
        super().__init__(
            f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}: training diverged "
            f"(try a smaller --lr, or --init kaiming with --input-scale 64). Stopped without saving; "
            f"the last good checkpoint is left as it was.")
        self.epoch, self.step, self.loss = epoch, step, loss


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived; the loop stops at the next consistent point."""


class StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (a second Ctrl-C aborts at once)."""

    def __init__(self, announce=True):
        self.signal = None
        self.announce = announce   # data-parallel: only rank 0 says it
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a test runner thread)
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        if self.announce:
            print(f"\n{signal.Signals(signum).name} received: finishing this step and saving a checkpoint "
                  f"(Ctrl-C again to abort without saving)", file=sys.stderr)

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def make_schedule(name, optimizer, step_size):
    """§5's plateau rule (divide by 10 when val error stalls, at most three times) or StepLR."""
    if name == "plateau":
        return ReduceLROnPlateau(optimizer, factor=0.1, patience=1, max_reductions=3)
    if name == "step":
        return StepLR(optimizer, step_size=step_size, gamma=0.1)
    raise ValueError(f"--schedule must be 'plateau' or 'step', got {name!r}")


def evaluate_center(model, loader, criterion, dp=None):
    """Loss, top-1 and top-5 error over ``loader`` (centre crops), in eval mode. Data-parallel
    (``dp``): each rank evaluates its rows and the sums and counts are added up exactly."""
    was_training = model.training
    model.eval()
    stats = RunningStats()
    for x, y in loader:
        if len(y) == 0:   # this rank's share of a last, small batch
            continue
        logits = model.forward(x)
        stats.update(criterion.forward(logits, y), logits, y)
    model.train(was_training)
    return dp.global_stats(stats) if dp is not None else stats


class LoopClock:
    """Where each step of ``Trainer.train_epoch`` spends its time, in seconds (a few
    ``perf_counter`` calls per step; read by benchmarks/bench_end_to_end.py). One dict per step:

    * ``data``: waiting for the loader's next batch (it is built by background threads);
    * ``step``: the SGD step: forward, loss, backward, update (``Trainer.train_step``);
    * ``metrics``: the running loss and top-1/top-5 hits (``RunningStats.update``);
    * ``progress``: the progress bar and its images/s, up to the next wait for data.
    """

    PARTS = ("data", "step", "metrics", "progress")

    def __init__(self):
        self.steps = []

    def record(self, tick, got_batch, stepped, counted):
        """Close one step that began at ``tick``; returns now (the next step's ``tick``)."""
        now = time.perf_counter()
        self.steps.append({"data": got_batch - tick, "step": stepped - got_batch,
                           "metrics": counted - stepped, "progress": now - counted})
        return now


class Trainer:
    """Everything one training run holds; ``run()`` does the epochs."""

    def __init__(self, args, resumed=None, run_dir=None):
        """``resumed``: a loaded Checkpoint to continue from (None: start afresh); ``run_dir``: the
        locked rundir.RunDir of ``args.out`` (None on MPI ranks that write nothing)."""
        self.args = args
        self.run_dir = run_dir
        self.comm = get_communicator()   # size 1 unless started by mpiexec -n N (data-parallel)
        self.is_root = self.comm.is_root
        self.towers = args.towers        # §3.2 model-parallel: rank g holds tower g (towers.py)
        if self.towers:
            from .parallel import check_towers_args
            check_towers_args(args, self.comm)
        else:
            check_global_batch(args.batch_size, self.comm.size)
        self.out = Path(args.out)
        if self.is_root:   # rank 0 alone owns the output folder (any lock/overwrite check goes here)
            self.out.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.out / "checkpoint.npz"
        self.best_path = self.out / "best.npz"
        self.log_path = self.out / "log.jsonl"
        self.curves_path = self.out / "curves.png"
        self.device = check_device(args.device)
        if self.device == "cuda" and self.comm.size > 1:
            select_gpu(self.comm)   # one GPU per rank on each machine (unverified: no GPU here)

        if not self.is_root:   # rank 0 prepares the subset (if needed) first, the others then find it
            self.comm.barrier()
        self.data_path = resolve_data(args.data, args.image_size, args.classes, args.per_class,
                                      args.val_per_class, args.workers, args.quiet or not self.is_root)
        if self.is_root:
            self.comm.barrier()
        self.train_set = data.PreparedDataset(self.data_path, "train")
        self.val_set = open_split(self.data_path, "val")
        check_crop(self.train_set, args.crop)
        if resumed is not None:  # the same subset, wherever it is now (item 8 of issue 10)
            self.data_fingerprint = check_same_subset(resumed, self.data_path)
        else:
            self.data_fingerprint = subset_fingerprint(self.data_path)

        self.model = AlexNet(num_classes=self.train_set.num_classes, crop=args.crop, groups=args.groups,
                             init=args.init, width=args.width, dropout=args.dropout, seed=args.seed,
                             lrn_groups=1 if args.lrn_across_towers else None)
        # The images need no gradient: let conv1 skip dL/dx (the col2im of the largest layer).
        self.model.conv1.input_grad = False
        self.criterion = SoftmaxCrossEntropyLoss()
        self.start_epoch, self.start_step = 0, 0
        self.partial = RunningStats()
        self.history = []
        self.best_error = math.inf
        self.lr_changes = []
        if resumed is not None:
            self.model.load_state_dict(resumed.model_state)
            self.model.set_rng_state(resumed.meta["dropout_rng"])
        if self.towers:   # keep this rank's tower of the one-process network
            from .parallel import TowerAlexNet
            self.model = TowerAlexNet(self.comm, reference=self.model)
        self.model.to(self.device)
        self.optimizer = SGD(self.model.parameters(), lr=args.lr, momentum=args.momentum,
                             weight_decay=args.wd)
        self.schedule = make_schedule(args.schedule, self.optimizer, args.step_size)
        if resumed is not None:
            meta = resumed.meta
            self.optimizer.load_state_dict(self.tower_share(resumed.optimizer_state))
            self.schedule.load_state_dict(meta["schedule"])
            self.start_epoch, self.start_step = int(meta["epoch"]), int(meta.get("step", 0))
            self.partial = RunningStats(**meta.get("partial", {}))
            if not self.is_root:   # the checkpoint's sums are all ranks' together: count them once
                self.partial = RunningStats()
            self.history = list(meta["history"])
            self.best_error = float(meta["best_error"]) if meta.get("best_error") is not None else math.inf
            self.lr_changes = list(meta.get("lr_changes", []))
            if getattr(args, "_lr_changed", False):
                self.change_lr(args.lr)
        shard = (self.comm.rank, self.comm.size)   # data-parallel: this rank's rows of every batch
        self.dp = DataParallel(self.comm, self.model, self.optimizer)
        if self.towers:   # both towers read the whole batch; they agree on stops and on rank 0's sums
            from .parallel import TowerSync
            shard, self.dp = (0, 1), TowerSync(self.comm)
        self.dp.broadcast_state()                   # rank 0's weights and velocities everywhere
        self.loader = data.Loader(self.train_set, args.batch_size, crop=args.crop, train=True, seed=args.seed,
                                  device=self.device, input_scale=args.input_scale, workers=args.workers,
                                  lighting_std=getattr(args, "lighting_std", 0.1), shard=shard)
        self.val_loader = None
        if self.val_set is not None:
            check_crop(self.val_set, args.crop)
            self.val_loader = data.Loader(self.val_set, args.batch_size, crop=args.crop, train=False,
                                          device=self.device, input_scale=args.input_scale,
                                          workers=args.workers, shard=shard)

    def change_lr(self, lr):
        """A new --lr on resume: from the resumed step on; recorded in the checkpoint and the log."""
        change = {"epoch": self.start_epoch + 1, "step": self.start_step, "from": self.optimizer.lr, "to": lr}
        self.optimizer.lr = lr
        self.lr_changes.append(change)
        print(f"learning rate changed from {change['from']:g} to {lr:g} at epoch {change['epoch']}, "
              f"step {change['step'] + 1} (recorded in log.jsonl)", file=sys.stderr)

    # -- saving --------------------------------------------------------------
    def meta(self, epoch, step=0, partial=None):
        """Everything but the arrays: enough to continue at ``epoch``, batch ``step``."""
        partial = self.partial if partial is None else partial
        return {"epoch": epoch, "step": step, "partial": partial.state_dict() if step else {},
                "schedule": self.schedule.state_dict(), "loader": {"seed": self.args.seed, "epoch": epoch},
                "history": self.history, "best_error": None if math.isinf(self.best_error) else self.best_error,
                "args": plain_args(self.args), "data_path": str(self.data_path),
                "class_names": self.train_set.class_names, "wnids": self.train_set.wnids,
                "image_size": self.train_set.size, "data_fingerprint": self.data_fingerprint,
                "lr_changes": self.lr_changes, "world_size": self.comm.size}

    def save(self, epoch, step=0):
        """Write checkpoint.npz (rank 0). Mid-epoch (``step``) every rank must call it: the
        running sums of all ranks are added up first."""
        partial = self.dp.global_stats(self.partial) if step else self.partial
        model, optimizer = self.whole_network(self.optimizer)
        if not self.is_root:
            return
        if self.run_dir is not None:
            self.run_dir.before_write()
        with saving(self.checkpoint_path):
            save_checkpoint(self.checkpoint_path, model, self.meta(epoch, step, partial), optimizer,
                            self.train_set.mean_image)
        if self.run_dir is not None:
            self.run_dir.saved()

    def save_best(self, epoch):
        """Write best.npz (rank 0; with --towers every rank must call it)."""
        model, _ = self.whole_network()
        if not self.is_root:
            return
        if self.run_dir is not None:
            self.run_dir.before_write()
        with saving(self.best_path):
            save_checkpoint(self.best_path, model, self.meta(epoch), mean_image=self.train_set.mean_image)

    def tower_share(self, state):
        """With --towers, this rank's rows of a one-process state (alexnet.parallel.split_state_dict)."""
        if not self.towers:
            return state
        from .parallel import split_state_dict
        return split_state_dict(state, self.comm.rank)

    def whole_network(self, optimizer=None):
        """(model, optimizer) as a checkpoint holds them: with --towers every rank must call this,
        the towers' shares are gathered into the one-process network's arrays."""
        if not self.towers:
            return self.model, optimizer
        return (self.model.full_model_view(),
                None if optimizer is None else self.model.full_optimizer_view(optimizer))

    def write_log(self):
        """Rewrite log.jsonl from the history (the checkpoint's copy is the source of truth)."""
        tmp = self.log_path.with_suffix(".jsonl.tmp")
        with saving(self.log_path):
            try:
                with open(tmp, "w") as handle:
                    handle.write("".join(json.dumps(h) + "\n" for h in self.history))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.log_path)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
        try:
            plot_curves(self.history, self.curves_path)
        except Exception as exc:  # a plot must never stop training
            print(f"warning: could not draw {self.curves_path}: {exc}", file=sys.stderr)

    # -- the loop --------------------------------------------------------------
    def train_step(self, x, y, epoch, step):
        """One SGD step (§5) on the batch (x, y); returns the loss and the logits."""
        if self.dp.active:
            return self.parallel_step(x, y, epoch, step)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported just below
            logits = self.model.forward(x)
            loss = self.criterion.forward(logits, y)
        if not math.isfinite(loss):
            raise NonFiniteLoss(epoch, step, loss)
        self.optimizer.zero_grad()
        self.model.backward(self.criterion.backward())
        self.optimizer.step()
        return loss, logits

    def parallel_step(self, x, y, epoch, step):
        """Data-parallel SGD step: this rank's rows, one all-reduce, the same update everywhere."""
        def forward_backward(x, y):
            with np.errstate(over="ignore", invalid="ignore"):
                logits = self.model.forward(x)
                loss = self.criterion.forward(logits, y)
                self.optimizer.zero_grad()
                self.model.backward(self.criterion.backward())
            return loss, logits

        stop = self._stop is not None and self._stop.signal is not None
        loss, logits, batch_loss = self.dp.step(forward_backward, x, y, self.loader.rows_of(step), stop)
        if not math.isfinite(batch_loss):   # every rank sees the same reduced loss: all stop together
            raise NonFiniteLoss(epoch, step, batch_loss)
        self.optimizer.step()
        return loss, logits

    _stop = None

    def train_epoch(self, epoch, stop):
        """One pass over the training set; returns (RunningStats, images per second)."""
        from tqdm import tqdm

        self.model.train()
        stats, first = self.partial, self.start_step
        self.loader.set_epoch(epoch, start_batch=first)   # a resumed epoch continues at batch `first`
        self._stop = stop
        bar = tqdm(total=len(self.loader), initial=first, desc=f"epoch {epoch + 1}/{self.args.epochs}",
                   unit="batch", dynamic_ncols=True, file=sys.stderr, disable=self.args.quiet or not self.is_root)
        clock = self.loop_clock = LoopClock()
        start, images = time.perf_counter(), 0
        tick = start
        try:
            for step, (x, y) in enumerate(self.loader, start=first):
                got_batch = time.perf_counter()
                loss, logits = self.train_step(x, y, epoch, step)
                stepped = time.perf_counter()
                if len(y):
                    stats.update(loss, logits, y)
                counted = time.perf_counter()
                images += self.loader.batch_size_of(step) if self.dp.active else len(y)
                rate = images / max(counted - start, 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{stats.loss:.3f}", top1=f"{100 * (1 - stats.top1_error):.1f}%",
                                img_s=f"{rate:.0f}", refresh=False)
                tick = clock.record(tick, got_batch, stepped, counted)
                stopping = self.dp.stop_seen if self.dp.active else stop.signal is not None
                if stopping and step + 1 < len(self.loader):
                    self.save(epoch, step + 1)
                    raise StopRequested(f"stopped at epoch {epoch + 1}, step {step + 1}; "
                                        f"checkpoint saved to {self.checkpoint_path}")
        finally:
            bar.close()
        self.start_step, self.partial = 0, RunningStats()
        return self.dp.global_stats(stats), images / max(time.perf_counter() - start, 1e-9)

    def run(self):
        args = self.args
        say = self.is_root
        if self.start_epoch >= args.epochs:
            if say:
                print(f"nothing to do: the checkpoint has finished {self.start_epoch} epochs "
                      f"(--epochs {args.epochs})", file=sys.stderr)
            return 0
        if getattr(self.schedule, "finished", False):
            if say:
                print("nothing to do: the learning rate was reduced three times and the validation error "
                      "stalled again (§5)", file=sys.stderr)
            return 0
        if say:
            self.print_header()
        with StopFlag(announce=say) as stop:
            for epoch in range(self.start_epoch, args.epochs):
                lr = self.optimizer.lr
                epoch_start = time.perf_counter()
                train_stats, rate = self.train_epoch(epoch, stop)
                val = (evaluate_center(self.model, self.val_loader, self.criterion, self.dp)
                       if self.val_loader else None)
                record = {"epoch": epoch + 1, "lr": lr, "train_loss": train_stats.loss,
                          "train_top1_error": train_stats.top1_error, "train_top5_error": train_stats.top5_error,
                          "val_loss": val.loss if val else None,
                          "val_top1_error": val.top1_error if val else None,
                          "val_top5_error": val.top5_error if val else None,
                          "images_per_s": rate, "seconds": time.perf_counter() - epoch_start,
                          **lr_notes(self.lr_changes, epoch + 1)}
                self.history.append(record)
                error = val.top1_error if val else train_stats.top1_error
                self.schedule.step(error)
                improved = error < self.best_error
                if improved:  # best.npz first: a crash between the two writes only repeats this epoch
                    self.best_error = error
                    self.save_best(epoch + 1)
                self.save(epoch + 1)
                if say:
                    self.write_log()
                    self.print_epoch(record, improved)
                if self.dp.any(stop.signal is not None):
                    raise StopRequested(f"stopped after epoch {epoch + 1}; checkpoint saved to "
                                        f"{self.checkpoint_path}")
                if getattr(self.schedule, "finished", False):
                    if say:
                        print("the validation error stalled after three reductions of the learning rate: "
                              "stopping (§5)", file=sys.stderr)
                    break
        return 0

    def print_header(self):
        a = self.args
        print(f"training AlexNet on {self.data_path}: {len(self.train_set)} train / "
              f"{len(self.val_set) if self.val_set else 0} val images, {self.train_set.num_classes} classes, "
              f"S={self.train_set.size}, crop {a.crop}; "
              f"{getattr(self.model, 'full_num_parameters', None) or self.model.num_parameters():,} parameters; "
              f"device {self.device}; batch {a.batch_size}, lr {self.optimizer.lr:g}, momentum {a.momentum}, "
              f"wd {a.wd}, init {a.init}, input scale {a.input_scale:g}", file=sys.stderr)
        if self.towers:
            print(f"two towers (§3.2) on two processes: rank 0 holds tower 0 ({self.model.num_parameters():,} "
                  f"of {self.model.full_num_parameters:,} parameters), rank 1 tower 1; they exchange conv3's, "
                  f"fc6's, fc7's and fc8's inputs and the logits", file=sys.stderr)
        if self.start_epoch or self.start_step:
            print(f"resuming at epoch {self.start_epoch + 1}, step {self.start_step + 1}", file=sys.stderr)

    def print_epoch(self, r, improved):
        def pct(value):
            return "  n/a " if value is None else f"{100 * value:5.1f}%"
        print(f"epoch {r['epoch']:3d}  lr {r['lr']:.2g}  train loss {r['train_loss']:.4f} "
              f"top-1 err {pct(r['train_top1_error'])} top-5 err {pct(r['train_top5_error'])}  |  "
              f"val loss {r['val_loss'] if r['val_loss'] is None else round(r['val_loss'], 4)} "
              f"top-1 err {pct(r['val_top1_error'])} top-5 err {pct(r['val_top5_error'])}  |  "
              f"{r['images_per_s']:.1f} img/s, {r['seconds']:.1f} s" + ("  *best*" if improved else ""),
              flush=True)


def keep_freed_memory():
    """Let glibc's malloc keep the step's large temporaries for the next step (Linux; best effort).

    By default glibc hands every block above 32 MB (im2col columns, activations, their gradients)
    to its own ``mmap`` and back to the system with ``munmap`` when NumPy frees it, so the next
    step faults the same memory in again and the kernel zeroes every page of it (NumPy asks for
    transparent huge pages, so each fault zeroes 2 MB). Measured at the recipe's shape (batch 128,
    crop 112): 0.02-0.15 s of kernel time per step (1,400-3,900 page faults); with the two
    thresholds below, about 0.008 s and no faults after the second step, and 5 % more images/s
    (benchmarks/bench_end_to_end.py). At batch 128, crop 227: 0.9-2.4 s of kernel time per step
    against 0.2-0.55 s, for a peak resident memory of 2.76 GB instead of 2.39 GB (freed blocks are
    kept in the heap, where they do not always fit the next request). The process keeps what it
    freed instead of returning it, which is what the next step needs anyway.
    Returns True when both settings were accepted."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt   # glibc; other C libraries (musl) have no mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, (1 << 31) - 1))


def plain_args(args):
    """The argparse namespace as a JSON-serialisable dict."""
    return {key: value for key, value in vars(args).items() if not callable(value) and not key.startswith("_")}


def apply_resume(args):
    """With ``--resume``, load the checkpoint and take the run-defining arguments from it
    (everything but resume.CHANGEABLE, and a new --lr or --data: see alexnet/resume.py), so that the
    continued run is the same run."""
    if not args.resume:
        return args, None
    if args.resume == "auto":
        args.resume = str(Path(args.out) / "checkpoint.npz")
    resumed = load_checkpoint(args.resume)
    if not resumed.optimizer_state:
        raise ValueError(f"{args.resume} has no training state (is it a best.npz?); resume from checkpoint.npz")
    saved, given = saved_arguments(resumed), given_options(args)
    check_resume_flags(args, saved)          # refuses flags that would change the run, naming them
    check_data_still_there(args, saved, given)
    args._lr_changed = "lr" in given and "lr" in saved and args.lr != saved["lr"]
    for key, value in saved.items():
        if key in CHANGEABLE or not hasattr(args, key):
            continue
        if key in given and (key in RECORDED or key in CHECKED):  # a new --lr, a moved --data
            continue
        setattr(args, key, value)
    return args, resumed


def main(args):
    """Entry point of ``python -m alexnet train``; returns the exit status.

    Under mpiexec every rank runs this (data-parallel); an exception on any rank prints its
    message and aborts all of them (no rank waits forever in a collective). Rank 0 alone checks,
    locks and writes ``--out`` (alexnet/rundir.py)."""
    if args.data is None and not args.resume:
        raise ValueError("--data is required (only --resume may leave it out: then the run's own is used)")
    comm = get_communicator()
    keep_freed_memory()
    with abort_on_error(comm, brief=(ValueError, FileNotFoundError, KeyError, KeyboardInterrupt, SaveFailed),
                        prefix="python -m alexnet train: error"):
        try:
            with guarded_out(args.out, args.resume, args.overwrite, write=comm.is_root) as run_dir:
                args, resumed = apply_resume(args)
                trainer = Trainer(args, resumed, run_dir=run_dir)
                return trainer.run()
        except SaveFailed as exc:      # rank 0 only; under mpiexec abort_on_error stops every rank
            if comm.size > 1:
                raise
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_SAVE_FAILED
        except NonFiniteLoss as exc:   # raised on every rank at the same step (the loss is reduced)
            if comm.is_root:
                print(f"error: {exc}", file=sys.stderr)
            return EXIT_NONFINITE
        except StopRequested as exc:   # likewise agreed by every rank
            if comm.is_root:
                print(str(exc), file=sys.stderr)
            return EXIT_INTERRUPTED
