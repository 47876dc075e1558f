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
schedule, dropout generators, the loader's epoch, the settings, the history),
``best.npz`` when the validation top-1 error improved, ``log.jsonl`` (one line per
epoch) and ``curves.png``. Ctrl-C or SIGTERM finishes the current step, writes a
mid-epoch checkpoint and exits; ``--resume`` continues exactly where it stopped
(on the CPU with the same seed, the final weights equal those of a run never
interrupted). A non-finite loss stops training at the next read of the running sums
(within ``Trainer.READ_EVERY`` seconds; they stay on the device in between, so a GPU
step never waits for the host), naming the epoch and the step, and leaves the last good
checkpoint as it was.

Under ``mpiexec -n N`` the same command trains data-parallel (alexnet/parallel/): ``-b`` is
the global batch, each rank computes its share, gradients are averaged with one all-reduce per
step, and only rank 0 prints and writes files. An exception on any rank aborts every rank.

The pieces: ``train(config)`` (what alexnet/cli.py calls with the parsed ``TrainConfig``,
alexnet/config.py) locks ``--out`` (alexnet/rundir.py) and applies ``--resume``
(alexnet/resume.py); ``build_trainer(config)`` assembles the communicator, data, model, optimizer,
schedule, parallel wrapper and loaders; ``Trainer.run`` is the epoch loop, with ``train_epoch``,
``validate`` and ``end_epoch`` (checkpoints, log, curves, the printed line).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

import data
from nn import SGD, Module, ReduceLROnPlateau, SoftmaxCrossEntropyLoss, StepLR, atomic_write, check_device

from .checkpoint import Checkpoint, save_checkpoint
from .config import TrainConfig, flag_names
from .datasets import check_crop, open_split, resolve_data
from .metrics import RunningStats
from .model import MAX_PARAMETERS, AlexNet, parameter_count
from .parallel import (
    DataParallel,
    StopWatchdog,
    TowerAlexNet,
    TowerSync,
    abort_on_error,
    check_global_batch,
    check_same_everywhere,
    check_towers_args,
    get_communicator,
    select_gpu,
    split_state_dict,
)
from .plots import plot_curves
from .resume import check_same_subset, lr_notes, resume_config, subset_fingerprint
from .rundir import RunDir, RunDirError, SaveFailed, guarded_out, saving

EXIT_NONFINITE = 3
EXIT_SAVE_FAILED = 74  # EX_IOERR: a checkpoint, log or figure could not be written
EXIT_INTERRUPTED = 130


class NonFiniteLoss(RuntimeError):
    def __init__(self, epoch, step, loss):
        super().__init__(
            f"the loss became {loss} at epoch {epoch + 1}, step {step + 1}: training diverged "
            f"(try a smaller --lr, or --init kaiming with --input-scale 64). Stopped without saving; "
            f"the last good checkpoint is left as it was."
        )
        self.epoch, self.step, self.loss = epoch, step, loss


class StopRequested(Exception):
    """Ctrl-C or SIGTERM arrived; the loop stops at the next consistent point."""


class SaveFailedEverywhere(Exception):
    """Rank 0 could not write an output file (``failure``: its SaveFailed; None on the other
    ranks), and every rank learnt it in the same all-reduce (``Trainer.check_saves``)."""

    def __init__(self, failure: SaveFailed | None):
        super().__init__(str(failure or "rank 0 could not write an output file"))
        self.failure = failure


class StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (a second Ctrl-C aborts at once)."""

    def __init__(self, announce=True):
        self.signal = None
        self.announce = announce  # data-parallel: only rank 0 says it
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
            print(
                f"\n{signal.Signals(signum).name} received: finishing this step and saving a checkpoint "
                f"(Ctrl-C again to abort without saving)",
                file=sys.stderr,
            )

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


def evaluate_center(model, loader, criterion, dp=None, progress=None):
    """Loss, top-1 and top-5 error over ``loader`` (centre crops), in eval mode. Data-parallel
    (``dp``): each rank evaluates its rows and the sums and counts are added up exactly.
    ``progress``: called after every batch (the stop watchdog's ``progress``)."""
    was_training = model.training
    model.eval()
    stats = RunningStats()
    for x, y in loader:
        if progress is not None:
            progress()
        if len(y) == 0:  # this rank's share of a last, small batch
            continue
        logits = model.forward(x)
        # The loader's labels come from a PreparedDataset, which checked them against its classes.
        stats.update(criterion.mean_loss(logits, y, labels_checked=True), logits, y)
    model.train(was_training)
    return dp.global_stats(stats) if dp is not None else stats


class LoopClock:
    """Where each step of ``Trainer.train_epoch`` spends its time, in seconds (a few
    ``perf_counter`` calls per step; read by benchmarks/bench_end_to_end.py). One dict per step:

    * ``data``: waiting for the loader's next batch (it is built by background threads);
    * ``step``: the SGD step: forward, loss, backward, update (``Trainer.train_step``);
    * ``metrics``: the batch's loss and top-1/top-5 hits, kept on the device (``RunningStats.update``);
    * ``progress``: the progress bar (with, every ``Trainer.READ_EVERY`` seconds, the one read of
      the running sums from the device), up to the next wait for data.

    On a GPU the parts are the host's time: the device runs behind it, and the host waits for it
    only where the sums are read.
    """

    PARTS = ("data", "step", "metrics", "progress")

    def __init__(self):
        self.steps = []

    def record(self, tick, got_batch, stepped, counted):
        """Close one step that began at ``tick``; returns now (the next step's ``tick``)."""
        now = time.perf_counter()
        self.steps.append(
            {
                "data": got_batch - tick,
                "step": stepped - got_batch,
                "metrics": counted - stepped,
                "progress": now - counted,
            }
        )
        return now


class Trainer:
    """One training run: the epoch loop (``run``) over the objects it is given.

    ``build_trainer(config)`` assembles them from a ``TrainConfig``; a Trainer never reads a
    command line. The loop is ``train_epoch`` (the SGD steps of §5) then ``validate`` (centre
    crops), and ``end_epoch`` hangs off it: history, schedule, ``save_best``/``save``
    (checkpoints), ``write_log`` (log.jsonl and curves.png), ``print_epoch``."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: Module,
        optimizer: SGD,
        schedule: Any,
        loader: data.Loader,
        val_loader: data.Loader | None,
        train_set: data.PreparedDataset,
        val_set: data.PreparedDataset | None,
        comm: Any,
        dp: Any,
        device: str = "cpu",
        data_path: Path | str | None = None,
        data_fingerprint: dict | None = None,
        run_dir: RunDir | None = None,
    ):
        """``model``: the AlexNet (or this rank's TowerAlexNet) on ``device``; ``optimizer`` and
        ``schedule`` over its parameters; ``loader``/``val_loader``: this rank's training and
        validation batches of ``train_set``/``val_set``; ``comm``: the communicator (size 1 in one
        process); ``dp``: the parallel wrapper (DataParallel, or TowerSync with --towers);
        ``run_dir``: the locked rundir.RunDir of ``config.out`` (None on ranks that write nothing)."""
        self.config = config
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.loader, self.val_loader = loader, val_loader
        self.train_set, self.val_set = train_set, val_set
        self.comm, self.dp, self.device = comm, dp, device
        self.is_root = comm.is_root
        self.towers = config.towers
        self.data_path = Path(data_path if data_path is not None else train_set.path)
        self.data_fingerprint = data_fingerprint
        self.run_dir = run_dir
        self.out = Path(config.out)
        self.checkpoint_path = self.out / "checkpoint.npz"
        self.best_path = self.out / "best.npz"
        self.log_path = self.out / "log.jsonl"
        self.curves_path = self.out / "curves.png"
        self.criterion = SoftmaxCrossEntropyLoss()
        # Where the run stands (``restore`` sets these from a checkpoint).
        self.start_epoch, self.start_step = 0, 0
        self.partial = RunningStats()
        self.history = []
        self.best_error = math.inf
        self.lr_changes = []
        self.loop_clock = None
        self._stop = None
        self.watchdog = None  # StopWatchdog of ``run``: told of every step boundary
        self.save_failure = None  # rank 0's SaveFailed, kept for check_saves (several ranks)

    def restore(self, checkpoint: Checkpoint, lr: float | None = None) -> None:
        """Continue from ``checkpoint``: velocities, schedule, epoch and step, the running sums of a
        mid-epoch stop, history. ``lr``: a new --lr, applied from the resumed step on (``change_lr``).
        The weights and dropout generators are not restored here: ``build_trainer`` loads them into
        the one-process network before the towers split it."""
        meta = checkpoint.meta
        self.optimizer.load_state_dict(self.tower_share(checkpoint.optimizer_state))
        self.schedule.load_state_dict(meta["schedule"])
        self.start_epoch, self.start_step = int(meta["epoch"]), int(meta.get("step", 0))
        self.partial = RunningStats(**meta.get("partial", {}))
        if not self.is_root:  # the checkpoint's sums are all ranks' together: count them once
            self.partial = RunningStats()
        self.history = list(meta["history"])
        self.best_error = float(meta["best_error"]) if meta.get("best_error") is not None else math.inf
        self.lr_changes = list(meta.get("lr_changes", []))
        if lr is not None:
            self.change_lr(lr)

    def change_lr(self, lr: float) -> None:
        """A new --lr on resume: from the resumed step on; recorded in the checkpoint and the log."""
        change = {"epoch": self.start_epoch + 1, "step": self.start_step, "from": self.optimizer.lr, "to": lr}
        self.optimizer.lr = lr
        self.lr_changes.append(change)
        print(
            f"learning rate changed from {change['from']:g} to {lr:g} at epoch {change['epoch']}, "
            f"step {change['step'] + 1} (recorded in log.jsonl)",
            file=sys.stderr,
        )

    # -- saving --------------------------------------------------------------
    def meta(self, epoch: int, step: int = 0, partial: RunningStats | None = None) -> dict:
        """Everything but the arrays: enough to continue at ``epoch``, batch ``step``."""
        partial = self.partial if partial is None else partial
        return {
            "epoch": epoch,
            "step": step,
            "partial": partial.state_dict() if step else {},
            "schedule": self.schedule.state_dict(),
            "loader": {"seed": self.config.seed, "epoch": epoch},
            "history": self.history,
            "best_error": None if math.isinf(self.best_error) else self.best_error,
            "args": self.config.to_dict(),
            "data_path": str(self.data_path),
            "class_names": self.train_set.class_names,
            "wnids": self.train_set.wnids,
            "image_size": self.train_set.size,
            "data_fingerprint": self.data_fingerprint,
            "lr_changes": self.lr_changes,
            "world_size": self.comm.size,
        }

    def save(self, epoch: int, step: int = 0) -> None:
        """Write checkpoint.npz (rank 0). Mid-epoch (``step``) every rank must call it: the
        running sums of all ranks are added up first."""
        partial = self.dp.global_stats(self.partial) if step else self.partial
        model, optimizer = self.whole_network(self.optimizer)
        if not self.is_root or self.save_failure is not None:
            return
        if self.run_dir is not None:
            self.run_dir.before_write()
        with self.keeping_save_failure(), saving(self.checkpoint_path):
            save_checkpoint(
                self.checkpoint_path,
                model,
                self.meta(epoch, step, partial),
                optimizer,
                self.train_set.mean_image,
            )
            if self.run_dir is not None:
                self.run_dir.saved()

    def save_best(self, epoch: int) -> None:
        """Write best.npz (rank 0; with --towers every rank must call it)."""
        model, _ = self.whole_network()
        if not self.is_root or self.save_failure is not None:
            return
        if self.run_dir is not None:
            self.run_dir.before_write()
        with self.keeping_save_failure(), saving(self.best_path):
            save_checkpoint(self.best_path, model, self.meta(epoch), mean_image=self.train_set.mean_image)

    @contextmanager
    def keeping_save_failure(self):
        """Around rank 0's writes. With several ranks a SaveFailed is kept in ``save_failure``, not
        raised, and the later writes are skipped: every rank learns of it at ``check_saves``, and
        the job ends with status 74 through a normal exit of every rank. An abort instead would
        end the job while the launcher may still be forwarding rank 0's message, and MPICH adds
        a notice of its own. With one process the SaveFailed is raised at once."""
        try:
            yield
        except SaveFailed as exc:
            if not self.dp.active:
                raise
            self.save_failure = exc

    def check_saves(self) -> None:
        """Every rank, after rank 0's writes: one all-reduce tells all whether they failed, and
        SaveFailedEverywhere is raised on every rank alike if so."""
        if self.dp.active and self.dp.any(self.save_failure is not None):
            raise SaveFailedEverywhere(self.save_failure)

    def tower_share(self, state: dict) -> dict:
        """With --towers, this rank's rows of a one-process state (split_state_dict)."""
        if not self.towers:
            return state
        return split_state_dict(state, self.comm.rank)

    def whole_network(self, optimizer: SGD | None = None) -> tuple:
        """(model, optimizer) as a checkpoint holds them: with --towers every rank must call this,
        the towers' shares are gathered into the one-process network's arrays."""
        if not self.towers:
            return self.model, optimizer
        return (
            self.model.full_model_view(),
            None if optimizer is None else self.model.full_optimizer_view(optimizer),
        )

    def write_log(self) -> None:
        """Rewrite log.jsonl from the history (the checkpoint's copy is the source of truth), then
        redraw curves.png."""
        if self.save_failure is not None:
            return
        tmp = self.log_path.with_suffix(".jsonl.tmp")  # a name rundir.remove_stale_temporaries knows
        with self.keeping_save_failure(), saving(self.log_path):
            with atomic_write(self.log_path, "w", tmp_path=tmp) as handle:
                handle.write("".join(json.dumps(h) + "\n" for h in self.history))
        if self.save_failure is not None:
            return
        try:
            plot_curves(self.history, self.curves_path)
        except Exception as exc:  # a plot must never stop training
            print(f"warning: could not draw {self.curves_path}: {exc}", file=sys.stderr)

    # -- the loop --------------------------------------------------------------
    def train_step(self, x: Any, y: Any, epoch: int, step: int) -> tuple[Any, Any]:
        """One SGD step (§5) on the batch (x, y); returns the loss (a 0-d array on the device:
        nothing is read back, see ``read_stats``) and the logits."""
        if self.dp.active:
            return self.parallel_step(x, y, epoch, step)
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported by read_stats
            logits = self.model.forward(x)
            # The loader's labels come from a PreparedDataset, which checked them on the host
            # against its classes (the network's outputs): no device read to check them again.
            loss = self.criterion.mean_loss(logits, y, labels_checked=True)
            self.optimizer.zero_grad()
            self.model.backward(self.criterion.backward())
            self.optimizer.step()
        return loss, logits

    def parallel_step(self, x: Any, y: Any, epoch: int, step: int) -> tuple[float, Any]:
        """Data-parallel SGD step: this rank's rows, one all-reduce, the same update everywhere."""

        def forward_backward(x, y):
            with np.errstate(over="ignore", invalid="ignore"):
                logits = self.model.forward(x)
                loss = self.criterion.mean_loss(logits, y, labels_checked=True)
                self.optimizer.zero_grad()
                self.model.backward(self.criterion.backward())
            return loss, logits

        stop = self._stop is not None and self._stop.signal is not None
        loss, logits, batch_loss = self.dp.step(forward_backward, x, y, self.loader.rows_of(step), stop)
        if not math.isfinite(batch_loss):  # every rank sees the same reduced loss: all stop together
            raise NonFiniteLoss(epoch, step, batch_loss)
        with np.errstate(over="ignore", invalid="ignore"):
            self.optimizer.step()
        return loss, logits

    READ_EVERY = 0.1  # seconds between reads of the running sums: tqdm's own refresh interval

    def read_stats(self, stats: RunningStats, epoch: int) -> None:
        """Read the running sums from the device (one transfer) and stop on a non-finite loss,
        naming the first step that had one. The loop calls it every ``READ_EVERY`` seconds (the
        progress bar is redrawn then), before a mid-epoch checkpoint and at the end of the epoch,
        so on a GPU the host never waits for the device in between, and nothing is ever saved
        after a non-finite loss."""
        stats.settle()
        if stats.first_nonfinite is not None:
            raise NonFiniteLoss(epoch, *stats.first_nonfinite)

    def train_epoch(
        self, epoch: int, stop: StopFlag, clock: LoopClock | None = None
    ) -> tuple[RunningStats, float]:
        """One pass over the training set; returns (RunningStats, images per second). ``clock``
        (default a new LoopClock) times every step; it is kept as ``self.loop_clock``."""
        from tqdm import tqdm

        self.model.train()
        stats, first = self.partial, self.start_step
        self.loader.set_epoch(epoch, start_batch=first)  # a resumed epoch continues at batch `first`
        self._stop = stop
        bar = tqdm(
            total=len(self.loader),
            initial=first,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="batch",
            dynamic_ncols=True,
            file=sys.stderr,
            disable=self.config.quiet or not self.is_root,
            mininterval=math.inf,  # redrawn only where the sums are read (below)
        )
        clock = self.loop_clock = LoopClock() if clock is None else clock
        start, images = time.perf_counter(), 0
        tick = last_read = start
        try:
            for step, (x, y) in enumerate(self.loader, start=first):
                got_batch = time.perf_counter()
                loss, logits = self.train_step(x, y, epoch, step)
                stepped = time.perf_counter()
                if len(y):
                    stats.update(loss, logits, y, step=step)
                counted = time.perf_counter()
                images += self.loader.batch_size_of(step) if self.dp.active else len(y)
                bar.update(1)
                if counted - last_read >= self.READ_EVERY:
                    self.read_stats(stats, epoch)
                    last_read = time.perf_counter()
                    bar.set_postfix(bar_postfix(stats, images / max(counted - start, 1e-9)))
                tick = clock.record(tick, got_batch, stepped, counted)
                self.mark_progress(step=True)
                stopping = self.dp.stop_seen if self.dp.active else stop.signal is not None
                if stopping and step + 1 < len(self.loader):
                    self.read_stats(stats, epoch)
                    self.save(epoch, step + 1)
                    self.check_saves()
                    raise StopRequested(
                        f"stopped at epoch {epoch + 1}, step {step + 1}; "
                        f"checkpoint saved to {self.checkpoint_path}"
                    )
            self.read_stats(stats, epoch)
            rate = images / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(bar_postfix(stats, rate), refresh=False)  # drawn by close()
        finally:
            bar.close()
        self.start_step, self.partial = 0, RunningStats()
        return self.dp.global_stats(stats), images / max(time.perf_counter() - start, 1e-9)

    def validate(self) -> RunningStats | None:
        """Loss and errors on the validation centre crops (None without a validation split)."""
        if self.val_loader is None:
            return None
        return evaluate_center(self.model, self.val_loader, self.criterion, self.dp, self.mark_progress)

    def mark_progress(self, step: bool = False) -> None:
        """A step boundary (``step``: the end of an SGD step): tell the stop watchdog (``run``)
        that this rank is not hung."""
        if self.watchdog is not None:
            self.watchdog.progress(step)

    def end_epoch(self, epoch: int, record: dict, error: float) -> bool:
        """After epoch ``epoch`` (0-based): history, schedule (on ``error``), best.npz when ``error``
        improved, checkpoint.npz; rank 0 then writes the log and prints. Returns whether it improved."""
        self.history.append(record)
        self.schedule.step(error)
        improved = error < self.best_error
        if improved:  # best.npz first: a crash between the two writes only repeats this epoch
            self.best_error = error
            self.save_best(epoch + 1)
        self.save(epoch + 1)
        if self.is_root:
            self.write_log()
            if self.save_failure is None:
                self.print_epoch(record, improved)
        return improved

    def run(self) -> int:
        """Train from ``start_epoch`` to ``config.epochs`` (or until the §5 schedule stops); 0."""
        epochs = self.config.epochs
        say = self.is_root
        if self.start_epoch >= epochs:
            if say:
                print(
                    f"nothing to do: the checkpoint has finished {self.start_epoch} epochs "
                    f"(--epochs {epochs})",
                    file=sys.stderr,
                )
            return 0
        if getattr(self.schedule, "finished", False):
            if say:
                print(
                    "nothing to do: the learning rate was reduced three times and the validation error "
                    "stalled again (§5)",
                    file=sys.stderr,
                )
            return 0
        if say:
            self.print_header()
        watchdog = StopWatchdog(self.comm, code=EXIT_INTERRUPTED, prefix="python -m alexnet train: error")
        with StopFlag(announce=say) as stop, watchdog:
            self.watchdog = watchdog
            try:
                self.train_epochs(epochs, stop)
            except StopRequested:  # agreed by every rank: leave together, still watched
                watchdog.settle()
                raise
        return 0

    def train_epochs(self, epochs: int, stop: StopFlag) -> None:
        """The epochs from ``start_epoch`` to ``epochs`` (or until the §5 schedule stops); raises
        StopRequested, on every rank at the same step, after a stop request."""
        say = self.is_root
        for epoch in range(self.start_epoch, epochs):
            lr = self.optimizer.lr
            epoch_start = time.perf_counter()
            train_stats, rate = self.train_epoch(epoch, stop)
            val = self.validate()
            record = epoch_record(epoch, lr, train_stats, val, rate, time.perf_counter() - epoch_start)
            record.update(lr_notes(self.lr_changes, epoch + 1))
            self.end_epoch(epoch, record, val.top1_error if val else train_stats.top1_error)
            self.mark_progress()
            self.check_saves()
            if self.dp.any(stop.signal is not None):
                raise StopRequested(
                    f"stopped after epoch {epoch + 1}; checkpoint saved to {self.checkpoint_path}"
                )
            if getattr(self.schedule, "finished", False):
                if say:
                    print(
                        "the validation error stalled after three reductions of the learning rate: "
                        "stopping (§5)",
                        file=sys.stderr,
                    )
                break

    def print_header(self) -> None:
        c = self.config
        print(
            f"training AlexNet on {self.data_path}: {len(self.train_set)} train / "
            f"{len(self.val_set) if self.val_set else 0} val images, {self.train_set.num_classes} classes, "
            f"S={self.train_set.size}, crop {c.crop}; "
            f"{getattr(self.model, 'full_num_parameters', None) or self.model.num_parameters():,} "
            f"parameters; "
            f"device {self.device}; batch {c.batch_size}, lr {self.optimizer.lr:g}, momentum {c.momentum}, "
            f"wd {c.wd}, init {c.init}, input scale {c.input_scale:g}",
            file=sys.stderr,
        )
        if self.towers:
            print(
                f"two towers (§3.2) on two processes: rank 0 holds tower 0 "
                f"({self.model.num_parameters():,} of {self.model.full_num_parameters:,} parameters), "
                f"rank 1 tower 1; they exchange conv3's, fc6's, fc7's and fc8's inputs and the logits",
                file=sys.stderr,
            )
        if self.start_epoch or self.start_step:
            print(f"resuming at epoch {self.start_epoch + 1}, step {self.start_step + 1}", file=sys.stderr)

    def print_epoch(self, r: dict, improved: bool) -> None:
        def pct(value):
            return "  n/a " if value is None else f"{100 * value:5.1f}%"

        print(
            f"epoch {r['epoch']:3d}  lr {r['lr']:.2g}  train loss {r['train_loss']:.4f} "
            f"top-1 err {pct(r['train_top1_error'])} top-5 err {pct(r['train_top5_error'])}  |  "
            f"val loss {r['val_loss'] if r['val_loss'] is None else round(r['val_loss'], 4)} "
            f"top-1 err {pct(r['val_top1_error'])} top-5 err {pct(r['val_top5_error'])}  |  "
            f"{r['images_per_s']:.1f} img/s, {r['seconds']:.1f} s" + ("  *best*" if improved else ""),
            flush=True,
        )


def bar_postfix(stats: RunningStats, rate: float) -> dict:
    """What the progress bar shows after the batch name: running loss, top-1 accuracy, images/s."""
    return {
        "loss": f"{stats.loss:.3f}",
        "top1": f"{100 * (1 - stats.top1_error):.1f}%",
        "img_s": f"{rate:.0f}",
    }


def epoch_record(
    epoch: int, lr: float, train: RunningStats, val: RunningStats | None, rate: float, seconds: float
) -> dict:
    """The line of log.jsonl for epoch ``epoch`` (0-based)."""
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss": train.loss,
        "train_top1_error": train.top1_error,
        "train_top5_error": train.top5_error,
        "val_loss": val.loss if val else None,
        "val_top1_error": val.top1_error if val else None,
        "val_top5_error": val.top5_error if val else None,
        "images_per_s": rate,
        "seconds": seconds,
    }


def build_trainer(
    config: TrainConfig,
    resumed: Checkpoint | None = None,
    *,
    lr_changed: bool = False,
    run_dir: RunDir | None = None,
    comm: Any = None,
) -> Trainer:
    """Assemble the Trainer of ``config``: communicator, output folder, device, data, model (with
    ``resumed``'s weights), the towers' share of it, optimizer and schedule, the parallel wrapper,
    loaders. ``resumed``: a loaded checkpoint to continue from (``resume.resume_config``), with a
    new --lr applied when ``lr_changed``; ``run_dir``: the locked rundir.RunDir of ``config.out``
    (None on MPI ranks that write nothing); ``comm``: default ``get_communicator()``."""
    comm = get_communicator() if comm is None else comm  # size 1 unless started by mpiexec -n N
    check_same_job(comm, config, resumed)
    check_parallel_args(config, comm)
    if comm.is_root:  # rank 0 alone owns the output folder (any lock/overwrite check goes here)
        Path(config.out).mkdir(parents=True, exist_ok=True)
    device = check_device(config.device)
    if device == "cuda" and comm.size > 1:
        select_gpu(comm)  # one GPU per rank on each machine

    train_set, val_set, data_path = open_data(config, comm)
    fingerprint = (
        check_same_subset(resumed, data_path)
        if resumed is not None  # the same subset, wherever
        else subset_fingerprint(data_path)
    )  # it is now
    check_same_everywhere(  # before the first collective whose shapes depend on the data
        comm,
        {"--data": fingerprint},
        lambda name, ours, theirs: "; ".join(data.subset_differences(ours, theirs)) or "mean image differs",
    )

    model = AlexNet(
        num_classes=train_set.num_classes,
        crop=config.crop,
        groups=config.groups,
        init=config.init,
        width=config.width,
        dropout=config.dropout,
        seed=config.seed,
        lrn_groups=1 if config.lrn_across_towers else None,
    )
    # The images need no gradient: let conv1 skip dL/dx (the col2im of the largest layer).
    model.conv1.input_grad = False
    if resumed is not None:
        model.load_state_dict(resumed.model_state)
        model.set_rng_state(resumed.meta["dropout_rng"])
    if config.towers:  # keep this rank's tower of the one-process network
        model = TowerAlexNet(comm, reference=model)
    model.to(device)
    optimizer = SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.wd)
    schedule = make_schedule(config.schedule, optimizer, config.step_size)

    shard = (comm.rank, comm.size)  # data-parallel: this rank's rows of every batch
    dp = DataParallel(comm, model, optimizer)
    if config.towers:  # both towers read the whole batch; they agree on stops and on rank 0's sums
        shard, dp = (0, 1), TowerSync(comm)
    loader = data.Loader(
        train_set,
        config.batch_size,
        crop=config.crop,
        train=True,
        seed=config.seed,
        device=device,
        input_scale=config.input_scale,
        workers=config.workers,
        lighting_std=config.lighting_std,
        shard=shard,
    )
    val_loader = None
    if val_set is not None:
        val_loader = data.Loader(
            val_set,
            config.batch_size,
            crop=config.crop,
            train=False,
            device=device,
            input_scale=config.input_scale,
            workers=config.workers,
            shard=shard,
        )
    trainer = Trainer(
        config,
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        loader=loader,
        val_loader=val_loader,
        train_set=train_set,
        val_set=val_set,
        comm=comm,
        dp=dp,
        device=device,
        data_path=data_path,
        data_fingerprint=fingerprint,
        run_dir=run_dir,
    )
    if resumed is not None:
        trainer.restore(resumed, lr=config.lr if lr_changed else None)
    dp.broadcast_state()  # rank 0's weights and velocities everywhere
    return trainer


#: Settings that may differ between ranks: where each machine keeps the data (compared by content,
#: ``subset_fingerprint``) and the checkpoint, where rank 0 writes, and how each rank loads.
PER_RANK_FIELDS = ("data", "resume", "out", "workers", "quiet")


def check_same_job(comm: Any, config: TrainConfig, resumed: Checkpoint | None) -> None:
    """Every rank must run the same job: the same settings (but ``PER_RANK_FIELDS``) and, resuming,
    the same point of the run; otherwise every rank stops with one line (an AgreedError) naming
    the first rank and flag that differ, before any collective whose shapes depend on them."""
    flags = flag_names()
    fields = {flags[key]: value for key, value in config.to_dict().items() if key not in PER_RANK_FIELDS}
    if resumed is not None:
        meta = resumed.meta
        fields["--resume's epoch and step"] = (int(meta["epoch"]), int(meta.get("step", 0)))
    check_same_everywhere(comm, fields)


def check_parallel_args(config: TrainConfig, comm: Any) -> None:
    """The flags that must suit the number of processes (each rank finds the same answer)."""
    if config.towers:  # §3.2 model-parallel: rank g holds tower g
        check_towers_args(config, comm)
    else:
        check_global_batch(config.batch_size, comm.size)


def check_model_flags(config: TrainConfig) -> None:
    """--crop and --width are bounded alone by their flags' types, and together here, before any
    lock or file. The classes come with the data, so this counts the parameters of a one-class
    network, a lower bound (the network's constructor counts them all: alexnet/model.py)."""
    shape = {"num_classes": 1, "crop": config.crop, "width": config.width, "groups": config.groups}
    count = parameter_count(shape)
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"--crop {config.crop} with --width {config.width:g} gives a network of at least "
            f"{count:,} parameters ({4 * count / 2**30:.0f} GiB in float32), more than the bound of "
            f"{MAX_PARAMETERS:,}; use a smaller --crop or --width"
        )


def check_classes(train_set: data.PreparedDataset, data_path: Path | str) -> None:
    """A classifier needs two classes: with one, the softmax is 1 whatever the weights, the loss
    and every gradient are 0, and the run would report 0.0 % error having learned nothing."""
    if train_set.num_classes < 2:
        raise ValueError(
            f"--data {data_path} has {train_set.num_classes} class ({', '.join(train_set.wnids)}): "
            f"a classifier needs at least 2 (prepare the subset with more classes)"
        )


def open_data(config: TrainConfig, comm: Any) -> tuple:
    """(train set, val set or None, prepared folder) of ``config.data``, preparing it if needed:
    rank 0 first, the other ranks then find it."""
    if not comm.is_root:
        comm.barrier()
    data_path = resolve_data(
        config.data,
        config.image_size,
        config.classes,
        config.per_class,
        config.val_per_class,
        config.workers,
        config.quiet or not comm.is_root,
    )
    if comm.is_root:
        comm.barrier()
    train_set = data.PreparedDataset(data_path, "train")
    check_classes(train_set, data_path)
    val_set = open_split(data_path, "val")
    check_crop(train_set, config.crop)
    if val_set is not None:
        check_crop(val_set, config.crop)
    return train_set, val_set, data_path


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
        mallopt = ctypes.CDLL(None).mallopt  # glibc; other C libraries (musl) have no mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30) and mallopt(m_trim_threshold, (1 << 31) - 1))


def train(config: TrainConfig, given: dict[str, str] | None = None) -> int:
    """Entry point of ``python -m alexnet train`` (alexnet/cli.py builds ``config``); returns the
    exit status. ``given``: ``{field: flag}`` of the settings typed on the command line, which
    decides what ``--resume`` may change (default: those that differ from the defaults).

    Under mpiexec every rank runs this (data-parallel); an exception on any rank prints its
    message and aborts all of them (no rank waits forever in a collective). Rank 0 alone checks,
    locks and writes ``--out`` (alexnet/rundir.py)."""
    if config.data is None and not config.resume:
        raise ValueError("--data is required (only --resume may leave it out: then the run's own is used)")
    given = config.non_defaults() if given is None else given
    comm = get_communicator()
    keep_freed_memory()
    # RunDirError and SaveFailed are found by rank 0 alone, while the other ranks go on (into a
    # collective, where they would wait forever): only an abort ends them. abort_on_error prints
    # the one line, flushed, and pauses before MPI_Abort so that it reaches the terminal; the
    # job's exit status is the documented one (mpiexec returns the abort's code).
    with abort_on_error(
        comm,
        brief=(ValueError, FileNotFoundError, KeyError, KeyboardInterrupt, SaveFailed, RunDirError),
        prefix="python -m alexnet train: error",
        exit_codes={SaveFailed: EXIT_SAVE_FAILED},
    ):
        if not config.resume:  # checked before any lock or file (--resume: once the run is loaded)
            check_same_job(comm, config, None)
            check_model_flags(config)
            check_parallel_args(config, comm)
        try:
            with guarded_out(config.out, config.resume, config.overwrite, write=comm.is_root) as run_dir:
                config, resumed, lr_changed = resume_config(config, given)
                trainer = build_trainer(config, resumed, lr_changed=lr_changed, run_dir=run_dir, comm=comm)
                return trainer.run()
        except SaveFailedEverywhere as exc:  # rank 0's write failed, and every rank knows it
            if comm.is_root:
                print(f"python -m alexnet train: error: {exc}", file=sys.stderr)
            return EXIT_SAVE_FAILED
        except SaveFailed as exc:  # rank 0 only; under mpiexec abort_on_error stops every rank
            if comm.size > 1:
                raise
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_SAVE_FAILED
        except NonFiniteLoss as exc:  # raised on every rank at the same step (the loss is reduced)
            if comm.is_root:
                print(f"error: {exc}", file=sys.stderr)
            return EXIT_NONFINITE
        except StopRequested as exc:  # likewise agreed by every rank
            if comm.is_root:
                print(str(exc), file=sys.stderr)
            return EXIT_INTERRUPTED
