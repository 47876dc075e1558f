# Solutions to the graded exercises of tutorials/09_data.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 09 --solutions; the tests do the same).

# EXERCISE: pca-lighting
def lighting_shift(alpha, eigvals, eigvecs):
    """alpha (B, 3), eigvals (3,) and eigvecs (3, 3) (columns) of the 0..255 covariance -> shifts (B, 3)."""
    return 255.0 * (alpha * eigvals / 255.0 ** 2) @ eigvecs.T
