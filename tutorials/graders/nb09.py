"""Notebook 09's exercise: the §4.1 colour shift by hand, against ``data.pca_lighting_shift``.

Several covariances (strongly correlated channels, so that a missing transpose of the eigenvector matrix
shows), eigenvalues in ``np.linalg.eigh``'s ascending order, and batches of 1, 7 and 3 images (3 alone would let
a transposed answer through).
"""

import numpy as np

from graders import Mismatch, compare


def _cases():
    rng = np.random.default_rng(0)
    cases = []
    for name, mixing, batch in [
        ("correlated channels, 7 images", np.array([[1.0, 0.9, 0.8], [0.0, 0.4, 0.3], [0.0, 0.0, 0.2]]), 7),
        ("random covariance, 1 image", rng.normal(size=(3, 3)), 1),
        ("random covariance, 3 images", rng.normal(size=(3, 3)), 3),
    ]:
        pixels = rng.normal(size=(200, 3)) @ mixing * 60 + 120  # 0..255-like RGB values
        eigvals, eigvecs = np.linalg.eigh(np.cov(pixels.T))
        cases.append((name, rng.normal(0, 0.1, size=(batch, 3)), eigvals, eigvecs))
    return cases


def pca_lighting(lighting_shift):
    """``lighting_shift(alpha (B, 3), eigvals (3,), eigvecs (3, 3)) -> (B, 3)`` in 0..255 units."""
    from data.augment import pca_lighting_shift

    errors = {}
    for name, alpha, eigvals, eigvecs in _cases():
        given = [alpha.copy(), eigvals.copy(), eigvecs.copy()]
        got = lighting_shift(*given)
        if not all(np.array_equal(a, b) for a, b in zip(given, (alpha, eigvals, eigvecs))):
            raise Mismatch(f"{name}: your function changed its inputs in place")
        errors[name] = compare(name, got, pca_lighting_shift(alpha, eigvals, eigvecs))
    return errors
