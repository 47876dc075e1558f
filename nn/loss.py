"""Softmax and cross-entropy: the "multinomial logistic regression objective" (§3.5).

For logits z (N x K) and labels t:

    p_k  = exp(z_k - max z) / sum_j exp(z_j - max z)          (softmax, stable)
    loss = (1/N) sum_n [ log sum_j exp(z_nj) - z_{n t_n} ]    (mean over the batch)
    dL/dz = (p - onehot(t)) / N

Subtracting the row maximum before exponentiating changes nothing
mathematically and keeps exp() from overflowing.
"""
from __future__ import annotations

from .backend import Array, get_array_module
from .module import Module


def softmax(logits: Array) -> Array:
    xp = get_array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class SoftmaxCrossEntropyLoss(Module):
    def __init__(self) -> None:
        self._probs = None
        self._labels = None

    def forward(self, logits: Array, labels: Array) -> float:
        xp = get_array_module(logits)
        if logits.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropyLoss expects logits of shape (N, K), got {tuple(logits.shape)}")
        labels = xp.asarray(labels)
        if labels.shape != (logits.shape[0],):
            raise ValueError(f"SoftmaxCrossEntropyLoss expects labels of shape ({logits.shape[0]},), "
                             f"got {tuple(labels.shape)}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"SoftmaxCrossEntropyLoss expects integer labels, got {labels.dtype}")
        num_classes = logits.shape[1]
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(f"SoftmaxCrossEntropyLoss: labels must lie in [0, {num_classes}), "
                             f"got [{int(labels.min())}, {int(labels.max())}]")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_sum_exp = xp.log(xp.exp(shifted).sum(axis=1))
        rows = xp.arange(logits.shape[0])
        self._probs = xp.exp(shifted - log_sum_exp[:, None])
        self._labels = labels
        return float((log_sum_exp - shifted[rows, labels]).mean())

    def backward(self, grad_out: float = 1.0) -> Array:
        probs, labels = self._cached(self._probs, self._labels)
        xp = get_array_module(probs)
        grad = probs.copy()
        grad[xp.arange(len(labels)), labels] -= 1
        grad *= float(grad_out) / len(labels)
        return grad
