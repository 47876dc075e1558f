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
    before, after = n // 2, (n - 1) // 2                     # b_i's window: maps i - before .. i + after
    s = np.empty_like(a)
    for i in range(channels):
        first, last = (i // block) * block, (i // block + 1) * block - 1      # i's tower
        lo, hi = max(first, i - before), min(last, i + after)
        s[:, i] = k + alpha * (a[:, lo:hi + 1] ** 2).sum(axis=1)
    ratio = grad_out * a * s ** -beta / s                    # g_i b_i / s_i
    grad_in = grad_out * s ** -beta                          # the direct term g_j s_j^-beta
    for j in range(channels):                                # the i whose window holds j: the mirrored window
        first, last = (j // block) * block, (j // block + 1) * block - 1
        lo, hi = max(first, j - after), min(last, j + before)
        grad_in[:, j] -= 2 * alpha * beta * a[:, j] * ratio[:, lo:hi + 1].sum(axis=1)
    return grad_in
