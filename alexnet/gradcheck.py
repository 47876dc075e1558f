"""The whole network's backward pass against central differences: a reduced AlexNet end to end.

    python -m alexnet.gradcheck                                     every nn layer, then this network
    python -m nn.gradcheck --layer alexnet.gradcheck:reduced_alexnet   this network alone

The check itself is ``nn.gradcheck`` (float64, relative errors; see there). Width 1/16 and crop 67,
the smallest crop that leaves a 1 x 1 map after pool5, keep the finite differences cheap while
every layer of §3.5 (grouped convolutions, LRN, overlapping pooling, dropout, the loss) is in the chain.
"""

from __future__ import annotations

import sys

import numpy as np

from nn import SoftmaxCrossEntropyLoss
from nn import gradcheck as nn_gradcheck

from .model import AlexNet

NAME = "AlexNet width 1/16, crop 67 (end to end)"


def reduced_alexnet(rng: np.random.Generator | None = None) -> tuple:
    """(model, input, loss, labels) for ``nn.gradcheck``: a 5-class AlexNet of width 1/16 on two
    67 x 67 images (``rng`` draws the images and labels; default seed 0)."""
    rng = np.random.default_rng(0) if rng is None else rng
    model = AlexNet(num_classes=5, crop=67, width=1 / 16, seed=0, init="kaiming")
    return model, rng.normal(size=(2, 3, 67, 67)), SoftmaxCrossEntropyLoss(), rng.integers(0, 5, 2)


def main(argv: list[str] | None = None) -> int:
    return nn_gradcheck.main(argv, extra_cases=[(NAME, reduced_alexnet)], prog="python -m alexnet.gradcheck")


if __name__ == "__main__":
    sys.exit(main())
