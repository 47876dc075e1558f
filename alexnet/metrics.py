"""Top-1 and top-5 error (§2: "the fraction of test images for which the correct label is not
among the five labels considered most probable by the model"), and running sums of them.

On a GPU every read of a device value makes the host wait for the device, so the training loop
keeps each batch's loss and hit counts where they were computed and :class:`RunningStats` reads
them all in ONE transfer when they are asked for (``settle``), adding them on the host in the
order of the batches: the sums are the same, bit for bit, as reading every batch at once.
"""

import math

from nn import asnumpy, get_array_module


def topk_hits(scores, labels, ks=(1, 5)):
    """For each k in ``ks``, how many rows of ``scores`` (N x K; logits or probabilities) have the
    label among their k highest entries, as one integer array ``(len(ks),)`` on the scores' device
    (nothing is read back; k larger than K counts every row as correct).

    A label appears at most once in a row's ranking, so the rows with it among the first k number
    the hits at ranks 1..k: a cumulative sum over the ranks gives every k at once."""
    xp = get_array_module(scores)
    labels = xp.asarray(labels)
    kmax = min(max(ks), scores.shape[1])
    ranked = xp.argsort(-scores, axis=1)[:, :kmax]
    hits_at_rank = (ranked == labels[:, None]).sum(axis=0)  # (kmax,): rows whose label ranks r-th
    within = xp.cumsum(hits_at_rank)  # within[k - 1]: rows whose label is among the first k
    return xp.stack([within[min(k, kmax) - 1] for k in ks])


def topk_correct(scores, labels, ks=(1, 5)):
    """:func:`topk_hits` read back as Python ints (one read)."""
    return [int(v) for v in asnumpy(topk_hits(scores, labels, ks))]


class RunningStats:
    """Sums of loss, top-1 and top-5 hits over the images seen so far.

    ``update`` keeps a batch's values where they are (a 0-d loss and the hit counts, on the
    device); the sums ``loss_sum``, ``top1`` and ``top5`` (and everything computed from them) read
    the batches not yet read in one transfer first (``settle``). ``count`` needs no read.
    ``first_nonfinite``: ``(step, loss)`` of the first batch whose loss was not finite, once read
    (``update``'s ``step``), else None.
    """

    def __init__(self, loss_sum=0.0, top1=0, top5=0, count=0):
        self._loss_sum, self._top1, self._top5 = float(loss_sum), int(top1), int(top5)
        self.count = int(count)
        self.first_nonfinite = None
        self._unread = []  # (loss, hits, n, step) per batch, in order

    def update(self, loss, scores, labels, step=None):
        """Add one batch: ``loss`` its mean loss (a float or a 0-d array), ``scores`` N x K."""
        n = int(scores.shape[0])
        self._unread.append((loss, topk_hits(scores, labels), n, step))
        self.count += n

    def settle(self):
        """Read every batch not yet read (one transfer) and add it to the sums, in order."""
        if not self._unread:
            return
        batches, self._unread = self._unread, []
        xp = get_array_module(batches[0][1])
        losses = xp.stack([xp.asarray(loss) for loss, *_ in batches])
        hits = xp.stack([h for _, h, *_ in batches])
        # One array, one read: the losses keep their dtype, and the counts (at most a batch, far
        # below 2**24) are exact in it.
        table = asnumpy(xp.concatenate([losses[:, None], hits.astype(losses.dtype)], axis=1))
        for (_, _, n, step), (loss, top1, top5) in zip(batches, table):
            loss = float(loss)
            if not math.isfinite(loss) and self.first_nonfinite is None:
                self.first_nonfinite = (step, loss)
            self._loss_sum += loss * n
            self._top1 += int(top1)
            self._top5 += int(top5)

    @property
    def loss_sum(self):
        self.settle()
        return self._loss_sum

    @property
    def top1(self):
        self.settle()
        return self._top1

    @property
    def top5(self):
        self.settle()
        return self._top5

    @property
    def loss(self):
        return self.loss_sum / self.count if self.count else math.nan

    @property
    def top1_error(self):
        return 1 - self.top1 / self.count if self.count else math.nan

    @property
    def top5_error(self):
        return 1 - self.top5 / self.count if self.count else math.nan

    def state_dict(self):
        return {"loss_sum": self.loss_sum, "top1": self.top1, "top5": self.top5, "count": self.count}
