# Solutions to the graded exercises of tutorials/06_overlapping_max_pooling.ipynb. Each block replaces the stub cell that
# starts with the same '# EXERCISE: <name>' line (python tutorials/execute.py 06 --solutions; the tests do the same).

# EXERCISE: avg-pool
class AvgPool2d(nn.Module):
    def __init__(self, kernel_size=3, stride=2):
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        z, s = self.kernel_size, self.stride
        self._input_shape = x.shape
        ho, wo = (x.shape[2] - z) // s + 1, (x.shape[3] - z) // s + 1
        out = np.zeros(x.shape[:2] + (ho, wo), dtype=x.dtype)
        for i in range(z):                                   # one strided slab per kernel offset
            for j in range(z):
                out += x[:, :, i:i + s * ho:s, j:j + s * wo:s]
        return out / (z * z)

    def backward(self, grad_out):
        z, s = self.kernel_size, self.stride
        ho, wo = grad_out.shape[2:]
        grad_in = np.zeros(self._input_shape, dtype=grad_out.dtype)
        for i in range(z):
            for j in range(z):
                grad_in[:, :, i:i + s * ho:s, j:j + s * wo:s] += grad_out / (z * z)
        return grad_in

# EXERCISE: maxpool-backward
def maxpool_backward(x, grad_out, kernel_size=3, stride=2):
    """x (N, C, H, W), grad_out (N, C, Ho, Wo) -> dL/dx (N, C, H, W)."""
    z, s = kernel_size, stride
    ho, wo = grad_out.shape[2:]

    def at(i, j):                                            # the input every window sees at its offset (i, j)
        return (slice(None), slice(None), slice(i, i + s * (ho - 1) + 1, s), slice(j, j + s * (wo - 1) + 1, s))

    out = np.max([x[at(i, j)] for i in range(z) for j in range(z)], axis=0)     # each window's maximum
    grad_in = np.zeros(x.shape, dtype=grad_out.dtype)
    unrouted = np.ones(grad_out.shape, dtype=bool)           # windows whose winner is not found yet
    for i in range(z):                                       # offsets in row-major order: the first maximum wins
        for j in range(z):
            wins = unrouted & (x[at(i, j)] == out)
            grad_in[at(i, j)] += grad_out * wins             # += : a pixel can win windows at several offsets
            unrouted &= ~wins
    return grad_in
