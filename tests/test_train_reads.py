"""The training loop keeps each batch's loss and top-k hits on the device and reads them in one
transfer every ``Trainer.READ_EVERY`` seconds (alexnet/metrics.py, ``Trainer.read_stats``). The
numbers it prints and saves must be exactly those of reading every batch at once, as the loop did
before: these tests recompute them that way, next to a real run, and compare with ``==``."""

import json
import math

import numpy as np
import pytest
from conftest import prepare_tiny72

import alexnet.train as train_module
import nn
from alexnet.cli import main as cli_main
from alexnet.metrics import RunningStats, topk_correct, topk_hits


def old_topk_correct(scores, labels, ks=(1, 5)):
    """The hit counts as the loop computed them before (one read per k)."""
    kmax = min(max(ks), scores.shape[1])
    ranked = np.argsort(-scores, axis=1)[:, :kmax]
    hits = ranked == labels[:, None]
    return [int(hits[:, : min(k, kmax)].any(axis=1).sum()) for k in ks]


class OldSums:
    """The running sums as the loop kept them before: every batch's loss read as a float."""

    def __init__(self):
        self.loss_sum, self.top1, self.top5, self.count = 0.0, 0, 0, 0

    def update(self, loss, scores, labels):
        n = scores.shape[0]
        c1, c5 = old_topk_correct(nn.asnumpy(scores), nn.asnumpy(labels))
        self.loss_sum += float(loss) * n
        self.top1, self.top5, self.count = self.top1 + c1, self.top5 + c5, self.count + n

    def values(self):
        return (self.loss_sum, self.top1, self.top5, self.count)


def test_topk_hits_equal_the_old_counts():
    rng = np.random.default_rng(0)
    for n, k in [(1, 3), (7, 10), (64, 5), (33, 1000)]:
        scores = rng.normal(size=(n, k)).astype(np.float32)
        labels = rng.integers(0, k, n)
        labels[: n // 3] = np.argmax(scores[: n // 3], axis=1)  # some certain top-1 hits
        for ks in [(1, 5), (1, 2, 3), (5, 20)]:
            assert topk_correct(scores, labels, ks) == old_topk_correct(scores, labels, ks)
            assert topk_hits(scores, labels, ks).shape == (len(ks),)


def test_running_stats_read_late_equal_the_old_sums_bit_for_bit():
    rng = np.random.default_rng(1)
    new, old = RunningStats(loss_sum=1.25, top1=3, top5=4, count=5), OldSums()
    old.loss_sum, old.top1, old.top5, old.count = 1.25, 3, 4, 5
    criterion = nn.SoftmaxCrossEntropyLoss()
    for step in range(23):
        n = int(rng.integers(1, 17))
        logits = rng.normal(scale=3, size=(n, 10)).astype(np.float32)
        labels = rng.integers(0, 10, n)
        new.update(criterion.mean_loss(logits, labels), logits, labels, step=step)
        old.update(criterion.forward(logits, labels), logits, labels)
        if step % 5 == 4:  # read now and then, as the loop does
            assert (new.loss_sum, new.top1, new.top5, new.count) == old.values()
    assert new.count == old.count  # known without a read
    assert (new.loss_sum, new.top1, new.top5, new.count) == old.values()
    assert new.loss == old.loss_sum / old.count and new.first_nonfinite is None


def test_running_stats_remember_the_first_nonfinite_loss_and_its_step():
    stats = RunningStats()
    scores, labels = np.zeros((2, 3), np.float32), np.array([0, 1])
    for step, loss in enumerate([1.0, 2.0, np.float32("inf"), np.float32("nan")]):
        stats.update(np.float32(loss), scores, labels, step=step + 10)
    assert stats.first_nonfinite is None  # nothing read yet
    stats.settle()
    assert stats.first_nonfinite == (12, math.inf)


def test_the_loss_checks_host_labels_always_and_device_labels_unless_told():
    criterion = nn.SoftmaxCrossEntropyLoss()
    logits = np.zeros((2, 3), np.float32)
    for checked in (False, True):  # NumPy labels are checked on the host even when told they were
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got \[0, 3\]"):
            criterion.mean_loss(logits, np.array([0, 3]), labels_checked=checked)
    assert criterion.mean_loss(logits, [2, 1]) == pytest.approx(math.log(3))
    assert isinstance(criterion.forward(logits, np.array([0, 1])), float)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return prepare_tiny72(tmp_path_factory)


@pytest.mark.parametrize("read_every", [0.0, math.inf], ids=["read-every-step", "read-at-epoch-end"])
def test_a_run_prints_and_saves_the_numbers_of_reading_every_batch(tiny, tmp_path, monkeypatch, read_every):
    """Two epochs; the sums recomputed the old way beside the run (the loss read as a float, the
    hits counted on the host), for every step, the progress bar's reads, the validation and the
    log: all equal with ``==``."""
    old_train, old_val, shown, train_steps = {}, {}, [], []
    real_step, real_validate = train_module.Trainer.train_step, train_module.Trainer.validate
    real_postfix = train_module.bar_postfix

    def step(self, x, y, epoch, k):
        loss, logits = real_step(self, x, y, epoch, k)
        sums = old_train.setdefault(epoch, OldSums())
        sums.update(loss, logits, y)
        train_steps.append(sums.values())
        return loss, logits

    def validate(self):
        sums = OldSums()
        self.model.eval()
        for x, y in self.val_loader:
            logits = self.model.forward(x)
            sums.update(self.criterion.forward(logits, y), logits, y)
        self.model.train()
        old_val[len(old_val)] = sums
        return real_validate(self)

    def postfix(stats, rate):
        shown.append((stats.loss_sum, stats.top1, stats.top5, stats.count))
        return real_postfix(stats, rate)

    monkeypatch.setattr(train_module.Trainer, "train_step", step)
    monkeypatch.setattr(train_module.Trainer, "validate", validate)
    monkeypatch.setattr(train_module, "bar_postfix", postfix)
    monkeypatch.setattr(train_module.Trainer, "READ_EVERY", read_every)
    out = tmp_path / "run"
    args = ["--crop", "67", "--width", "0.0625", "-b", "16", "--init", "kaiming", "--input-scale", "64"]
    assert cli_main(["train", "--data", str(tiny), *args, "--epochs", "2", "--out", str(out), "--quiet"]) == 0

    history = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(history) == 2 == len(old_train) == len(old_val)
    for e, record in enumerate(history):
        t, v = old_train[e], old_val[e]
        assert record["train_loss"] == t.loss_sum / t.count
        assert record["train_top1_error"] == 1 - t.top1 / t.count
        assert record["train_top5_error"] == 1 - t.top5 / t.count
        assert record["val_loss"] == v.loss_sum / v.count
        assert record["val_top1_error"] == 1 - v.top1 / v.count
        assert record["val_top5_error"] == 1 - v.top5 / v.count
    # every value the bar showed is the old sums after some step
    assert shown and all(s in train_steps for s in shown)
    steps_per_epoch = len(train_steps) // 2
    if read_every == 0:  # a read after every step, and one more at the epoch's end
        assert len(shown) == 2 * (steps_per_epoch + 1)
        expected = []
        for e in range(2):
            epoch_steps = train_steps[e * steps_per_epoch : (e + 1) * steps_per_epoch]
            expected += epoch_steps + epoch_steps[-1:]
        assert shown == expected
    else:  # only the epochs' ends
        assert shown == [train_steps[steps_per_epoch - 1], train_steps[-1]]
