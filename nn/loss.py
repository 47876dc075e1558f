"""Softmax and cross-entropy: the "multinomial logistic regression objective" (§3.5).

For logits z (N x K) and labels t:

    p_k  = exp(z_k - max z) / sum_j exp(z_j - max z)          (softmax, stable)
    loss = (1/N) sum_n [ log sum_j exp(z_nj) - z_{n t_n} ]    (mean over the batch)
    dL/dz = (p - onehot(t)) / N

Subtracting the row maximum before exponentiating changes nothing
mathematically and keeps exp() from overflowing.
"""
from __future__ import annotations

import numpy as np

from .backend import Array, asnumpy, get_array_module
from .module import Module


def check_labels(labels: Array, num_classes: int) -> None:
    """Raise a ValueError unless every label lies in [0, num_classes) (one read for device labels)."""
    if not labels.size:
        return
    xp = get_array_module(labels)
    low, high = (int(v) for v in asnumpy(xp.stack([labels.min(), labels.max()])))
    if low < 0 or high >= num_classes:
        raise ValueError(f"SoftmaxCrossEntropyLoss: labels must lie in [0, {num_classes}), got [{low}, {high}]")


def softmax(logits: Array) -> Array:
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropyLoss(Module):
    """``forward(logits, labels) -> float``: the batch's mean loss, read back as a Python float.

    ``mean_loss(logits, labels)`` is the same computation without the read: a 0-d array on the
    logits' device, which a training loop can keep there (on a GPU every read makes the host wait
    for the device). The labels are range-checked where they lie: NumPy labels on the host, for
    free, always; labels on the device with one read, skipped with ``labels_checked=True`` when the
    caller has checked them on the host already (``alexnet train``: :class:`data.PreparedDataset`
    checks every label against its classes, which are the network's outputs). An out-of-range
    label is never passed through silently: the device gather would wrap it around.
    """

    def __init__(self) -> None:
        self._probs = self._labels = self._rows = None

    def forward(self, logits: Array, labels: Array) -> float:
        return float(self.mean_loss(logits, labels))

    def mean_loss(self, logits: Array, labels: Array, labels_checked: bool = False) -> Array:
        """The mean loss as a 0-d array on the logits' device (nothing is read back). Host labels
        are always range-checked; ``labels_checked=True`` skips the one read that checking device
        labels costs."""
        xp = get_array_module(logits)
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropyLoss expects logits of shape (N, K), got {tuple(logits.shape)}")
        if get_array_module(labels) is np:  # a list too; checked on the host, before any upload
            labels = np.asarray(labels)
        if labels.shape != (logits.shape[0],):
            raise ValueError(f"SoftmaxCrossEntropyLoss expects labels of shape ({logits.shape[0]},), "
                             f"got {tuple(labels.shape)}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropyLoss expects integer labels, got {labels.dtype}")
        if not labels_checked or get_array_module(labels) is np:
            check_labels(labels, logits.shape[1])
        labels, rows = xp.asarray(labels), xp.arange(logits.shape[0])
        shifted = logits - logits.max(axis=1, keepdims=True)                # z - max z
        exp = xp.exp(shifted)
        sums = exp.sum(axis=1)                                               # sum_j exp(z_j - max z)
        log_sum_exp = xp.log(sums)                                           # log sum_j exp(z_j), shifted
        probs = exp
        probs /= sums[:, None]                                               # p_k
        self._probs, self._labels, self._rows = probs, labels, rows
        return (log_sum_exp - shifted[rows, labels]).mean()                  # loss (the shifts cancel)

    def backward(self, grad_out: float = 1.0) -> Array:
        probs, labels, rows = self._cached(self._probs, self._labels, self._rows)
        per_example = probs.dtype.type(float(grad_out) / len(labels))       # d(mean)/d(loss_n), times grad_out
        grad = probs * per_example                                           # p / N
        grad[rows, labels] -= per_example                                    # - onehot(t) / N
        return grad
