# Solutions to the graded exercises of tutorials/05_local_response_norm.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 05 --solutions; the tests do the same).

# EXERCISE: lrn-loop
def lrn_loop(a, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    """a (N, C, H, W) -> b, the same shape."""
    channels = a.shape[1]
    block = channels // groups
    b = np.empty_like(a)
    for i in range(channels):
        first, last = (i // block) * block, (i // block + 1) * block - 1      # this tower's maps
        lo, hi = max(first, i - n // 2), min(last, i + (n - 1) // 2)
        b[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta
    return b
