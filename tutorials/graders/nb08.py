"""Notebook 08's exercises: a stable softmax cross-entropy (§3.5) and the paper's update rule (§5).

Softmax: the rows of one batch sit at very different scales (a batch-wide maximum then underflows the rows far
below it), some rows are confidently wrong by hundreds (``-log(softmax)`` without log-sum-exp then takes the log
of 0), and the batch size differs from the number of classes (so a transposed gradient shows). Update rule: two
parameters over several steps with the learning rate divided by 10 half-way (where the paper's rule and
PyTorch's part: nn/optim.py), against ``nn.SGD``, with a weight decay large enough that its term shows.
"""

import numpy as np

import nn
from graders import Mismatch, compare


def _pair(result, what):
    if result is None:
        raise Mismatch(f"{what}: your function returned None; is a `return` missing?")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Mismatch(f"{what}: expected a pair (loss, gradient), got {type(result).__name__}")
    return result


def _softmax_cases():
    rng = np.random.default_rng(0)
    ordinary = rng.normal(size=(6, 10)) * 3
    shifted = ordinary + 1000.0  # every row around 1000: a naive exp overflows
    scales = rng.normal(size=(5, 4)) + np.array([[0.0], [900.0], [-900.0], [40.0], [-300.0]])  # row offsets
    wrong = np.array([[0.0, 800.0, 1.0], [500.0, -500.0, 0.0]])  # confidently wrong: p_t underflows to 0
    spread = rng.normal(size=(7, 3)) * 200  # rows with large differences inside them
    return [
        ("ordinary logits, 6x10", ordinary, rng.integers(0, 10, 6)),
        ("logits around 1000", shifted, rng.integers(0, 10, 6)),
        ("rows at very different scales (offsets 0 to +-900)", scales, np.array([0, 1, 2, 3, 0])),
        ("confidently wrong rows (-log of an underflowed p_t)", wrong, np.array([0, 1])),
        ("logits spread by 200 within each row", spread, rng.integers(0, 3, 7)),
        ("one example", rng.normal(size=(1, 5)), np.array([4])),
        ("float32 logits", (rng.normal(size=(8, 6)) * 4).astype(np.float32), rng.integers(0, 6, 8)),
    ]


def softmax_xent(softmax_cross_entropy):
    """``softmax_cross_entropy(logits, labels) -> (mean loss, dL/dlogits)`` against nn.SoftmaxCrossEntropyLoss."""
    errors = {}
    for name, logits, labels in _softmax_cases():
        reference = nn.SoftmaxCrossEntropyLoss()
        expected_loss = reference.forward(logits.astype(np.float64), labels)
        expected_grad = reference.backward().astype(logits.dtype)
        given = logits.copy()
        loss, grad = _pair(softmax_cross_entropy(given, labels.copy()), name)
        if not np.array_equal(given, logits):
            raise Mismatch(f"{name}: your function changed the logits in place")
        loss = compare(f"loss, {name}", loss, np.float64(expected_loss), dtype=False)
        grad = compare(f"gradient, {name}", grad, expected_grad)
        tolerance = 1e-5 if logits.dtype == np.float32 else 1e-6
        errors[f"loss, {name}"] = (loss, tolerance)
        errors[f"gradient, {name}"] = (grad, tolerance)
    return errors


def _sgd_cases():
    # (lr, momentum, weight decay, steps, the step at which lr is divided by 10)
    return [(0.01, 0.9, 5e-4, 12, 6), (0.3, 0.5, 0.1, 10, 4), (0.05, 0.0, 0.02, 6, 3)]


def sgd_update(PaperSGD):
    """``PaperSGD(params, lr, momentum, weight_decay)`` with ``.step()`` and a ``.lr`` that may change, against
    nn.SGD over several steps with the learning rate divided by 10 at one of them."""
    errors = {}
    for lr, momentum, decay, steps, drop in _sgd_cases():
        config = f"lr {lr} -> {lr / 10:g} at step {drop}, momentum {momentum}, weight decay {decay}"
        rng = np.random.default_rng(1)
        start = [rng.normal(size=(3, 4)), rng.normal(size=5)]
        mine = [nn.Parameter(w.copy()) for w in start]
        ref = [nn.Parameter(w.copy()) for w in start]
        mine_opt = PaperSGD(mine, lr=lr, momentum=momentum, weight_decay=decay)
        ref_opt = nn.SGD(ref, lr=lr, momentum=momentum, weight_decay=decay)
        for step in range(steps):
            if step == drop:
                mine_opt.lr /= 10
                ref_opt.lr /= 10
            for a, b in zip(mine, ref):  # a gradient that depends on w, as a loss's does, plus noise
                noise = rng.normal(size=b.data.shape)
                a.grad[...] = 0.5 * a.data + noise
                b.grad[...] = 0.5 * b.data + noise
            grads = [a.grad.copy() for a in mine]
            mine_opt.step()
            ref_opt.step()
            for a, before in zip(mine, grads):
                if not np.array_equal(a.grad, before):
                    raise Mismatch(f"{config}: step() changed the gradients (leave them to zero_grad)")
            if step in (drop - 1, drop, steps - 1):
                when = {drop - 1: "before the drop", drop: "just after the drop", steps - 1: "at the end"}[
                    step
                ]
                for name, a, b in zip(("weight (3x4)", "bias (5,)"), mine, ref):
                    errors[f"{name} after step {step + 1} ({when}), {config}"] = compare(
                        f"{name} after step {step + 1}, {config}", a.data, b.data
                    )
    return errors
