"""Top-1 and top-5 error (§2: "the fraction of test images for which the correct label is not
among the five labels considered most probable by the model"), and running averages of them.
"""

import math

from nn import asnumpy, get_array_module


def topk_correct(scores, labels, ks=(1, 5)):
    """How many rows of ``scores`` (N x K; logits or probabilities) have the label among their
    k highest entries, for each k in ``ks`` (k larger than K counts every row as correct)."""
    xp = get_array_module(scores)
    labels = xp.asarray(labels)
    kmax = min(max(ks), scores.shape[1])
    ranked = xp.argsort(-scores, axis=1)[:, :kmax]
    hits = ranked == labels[:, None]
    counts = [int(asnumpy(hits[:, : min(k, kmax)].any(axis=1).sum())) for k in ks]
    return counts


class RunningStats:
    """Sums of loss, top-1 and top-5 hits over the images seen so far."""

    def __init__(self, loss_sum=0.0, top1=0, top5=0, count=0):
        self.loss_sum, self.top1, self.top5, self.count = float(loss_sum), int(top1), int(top5), int(count)

    def update(self, loss, scores, labels):
        n = int(scores.shape[0])
        c1, c5 = topk_correct(scores, labels)
        self.loss_sum += float(loss) * n
        self.top1 += c1
        self.top5 += c5
        self.count += n

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
