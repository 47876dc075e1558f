"""Notebook 12's exercise: the bytes one rank sends at fc6's input, against ``alexnet.parallel.exchange_bytes``.

Crops, widths (where conv5's kernels are rounded to an even count), batch sizes and float sizes that each change
the answer, and an integer result.
"""

from functools import cache

# width 0.31: 256 x 0.31 = 79.4 kernels, rounded to 80 (two towers of 40), not 79 // 2 = 39
CASES = [(128, 227, 1.0, 4), (32, 112, 0.75, 4), (4, 67, 1 / 16, 8), (7, 150, 0.5, 2), (3, 99, 0.31, 4)]


@cache
def _expected(batch, crop, width, itemsize):
    from alexnet.model import AlexNet
    from alexnet.parallel import exchange_bytes

    model = AlexNet(num_classes=1000, crop=crop, width=width, seed=0)
    return {t["exchange"]: t for t in exchange_bytes(model, batch, itemsize)}["gather5"]["bytes_forward"]


def fc6_bytes(fc6_exchange_bytes):
    """``fc6_exchange_bytes(batch, crop, width, itemsize) -> int``."""
    from graders import Mismatch

    errors = {}
    for batch, crop, width, itemsize in CASES:
        what = f"batch {batch}, crop {crop}, width {width:g}, {itemsize}-byte floats"
        got = fc6_exchange_bytes(batch, crop, width, itemsize)
        if got is None:
            raise Mismatch(f"{what}: your function returned None; is a `return` missing?")
        expected = _expected(batch, crop, width, itemsize)
        if not float(got).is_integer():
            raise Mismatch(f"{what}: {got} is not a whole number of bytes")
        errors[what] = abs(float(got) - expected) / expected
    return errors
