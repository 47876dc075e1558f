"""Notebook 10's exercise: the top-k error of §2, against ``alexnet.metrics.topk_correct``.

k = 1, 2, 5 and k equal to the number of classes (where the error is 0), a batch whose size is not the number of
classes, a single row, and the scores left as they were (no sorting in place).
"""

import numpy as np

from graders import Mismatch, compare


def _cases():
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(300, 20))
    return [
        ("300 x 20 scores", wide, rng.integers(0, 20, 300), (1, 2, 5, 20)),
        ("7 x 12 scores", rng.normal(size=(7, 12)) * 10, rng.integers(0, 12, 7), (1, 5, 11)),
        ("one row", np.array([[0.1, 0.5, 0.3, 0.2, 0.9, 0.0, 0.4]]), np.array([2]), (1, 3, 4, 5)),
    ]


def top_k_error(top_k_error):
    """``top_k_error(scores (N, K), labels (N,), k) -> float``: the fraction of rows whose label is not among
    the k highest scores."""
    from alexnet.metrics import topk_correct

    errors = {}
    for name, scores, labels, ks in _cases():
        expected = topk_correct(scores, labels, ks=ks)
        for k, correct in zip(ks, expected):
            given = scores.copy()
            got = top_k_error(given, labels.copy(), k)
            if not np.array_equal(given, scores):
                raise Mismatch(f"{name}, k={k}: your function changed the scores in place")
            what = f"{name}, k={k}"
            errors[what] = compare(what, got, np.float64(1 - correct / len(labels)), dtype=False)
    return errors
