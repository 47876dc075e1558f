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

# EXERCISE: lrn-backward
def lrn_backward(a, grad_out, n=5, k=2.0, alpha=1e-4, beta=0.75, groups=1):
    """a, grad_out (N, C, H, W) -> dL/da, the same shape."""
    channels = a.shape[1]
    block = channels // groups

    def window(i):                                                     # the maps in b_i's denominator
        first, last = (i // block) * block, (i // block + 1) * block - 1
        return range(max(first, i - n // 2), min(last, i + (n - 1) // 2) + 1)

    s = np.stack([k + alpha * sum(a[:, j] ** 2 for j in window(i)) for i in range(channels)], axis=1)
    b = a * s ** -beta
    ratio = grad_out * b / s                                           # g_i b_i / s_i
    grad_in = grad_out * s ** -beta                                    # the direct term g_j s_j^-beta
    for i in range(channels):
        for j in window(i):                                            # a_j sits in b_i's denominator
            grad_in[:, j] -= 2 * alpha * beta * a[:, j] * ratio[:, i]
    return grad_in
